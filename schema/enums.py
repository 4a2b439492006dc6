"""GraphQL enums: the domain enums, registered with Strawberry under the same names.

The domain holds the single definition of the values; registering the very same
classes keeps resolvers free of conversions.
"""

import strawberry

from domain.contents import ContentKind
from domain.reactions import ReactionType

strawberry.enum(ReactionType)
strawberry.enum(ContentKind)

__all__ = ["ContentKind", "ReactionType"]
