import strawberry

from domain.contents import ContentKind as DomainContentKind
from domain.reactions import ReactionType as DomainReactionType

# The domain enums are the single source of the values; GraphQL only names them.
ReactionType = strawberry.enum(DomainReactionType, name="ReactionType")
ContentKind = strawberry.enum(DomainContentKind, name="ContentKind")
