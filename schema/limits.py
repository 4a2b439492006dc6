"""Limits on a document, checked before graphql-core validates it, in time linear in its size.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk a fragment again
at every spread of it, so a chain of fragments that each spread the previous one
twice costs 2^n steps: 30 levels in 3 KB held the event loop for minutes. Here
each fragment is summarised once (depth, aliases, estimated result size, spread
nesting) and a spread adds the summary of its fragment, so the whole check visits
every node of the document a bounded number of times, however the fragments are
spread. The spread graph is walked without recursion, so a chain of thousands of
fragments is refused with a clear error instead of a RecursionError.

The result size estimate ("cost") is an upper bound on the number of values an
operation can produce: every field counts 1, a list field multiplies its
subtree by the most items it can return (its ``first``/``last`` literal, the
length of a literal id list, a declared bound, or for introspection the real
size of this schema, per type its mean). Executing a validated document is
then bounded by its cost, whatever the spreads and aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
)
from graphql.type.introspection import DirectiveLocation

CODE = "GRAPHQL_VALIDATION_FAILED"

# How many items a list field returns at most, when no literal argument says it:
# an int, or ("arg", name, most) for the length of a literal list argument,
# or PAGE for "the first/last of the field that holds this one".
PAGE = "page"


@dataclass(frozen=True, slots=True)
class Points:
    """A list the domain sizes from the operation's own range (an analytics series:
    one point per bucket, up to ``most``). It counts toward the result size (cost),
    not toward the list items a client asks for: no ``first`` can shrink it."""

    most: int


ListBound = int | str | tuple[str, str, int] | Points


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 15
    max_aliases: int = 30
    max_cost: int = 100_000
    # List items (cards, reactors, introspection entries) one operation may ask for.
    max_list_items: int = 2_000
    max_fragment_nesting: int = 20
    # Fields one selection set selects, with those its fragments bring: graphql-core
    # compares fields of the same name pairwise, so hundreds of repeats cost it
    # a quadratic amount of work (a tenth of a second at 500).
    max_selections: int = 200
    # Unknown list fields are taken to return this many items.
    default_list_bound: int = 100


@dataclass(frozen=True, slots=True)
class _Summary:
    depth: int
    aliases: int
    cost: int
    # Fields selected at this level, through inline fragments and spreads.
    width: int
    # List items the selection asks for, at most (what a list field multiplies).
    items: int


_EMPTY = _Summary(0, 0, 0, 0, 0)


class _Refused(Exception):
    def __init__(self, message: str, node: Any) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def _introspection_bounds(schema: GraphQLSchema) -> dict[tuple[str, str], ListBound]:
    """This schema's introspection list sizes: exact for the schema-wide lists, and
    per type the mean (rounded up) rather than the largest, so that the usual
    introspection query (every type's fields, their args and types) is estimated
    near its real size instead of as every type having the most fields."""
    types = list(schema.type_map.values())
    fields = [
        f
        for t in types
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
        for f in t.fields.values()
    ]

    def mean(total: int, over: int) -> int:
        return max(1, -(-total // max(1, over)))

    def per_type(attr: str) -> int:
        return mean(sum(len(getattr(t, attr, None) or ()) for t in types), len(types))

    possible = sum(
        len(schema.get_possible_types(t)) for t in types if isinstance(t, GraphQLInterfaceType)
    ) + sum(len(getattr(t, "types", None) or ()) for t in types)
    args = mean(
        sum(len(f.args) for f in fields) + sum(len(d.args) for d in schema.directives),
        len(fields) + len(schema.directives),
    )
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): per_type("fields"),
        ("__Type", "inputFields"): per_type("fields"),
        ("__Type", "enumValues"): per_type("values"),
        ("__Type", "interfaces"): per_type("interfaces"),
        ("__Type", "possibleTypes"): mean(possible, len(types)),
        ("__Field", "args"): args,
        ("__Directive", "args"): args,
        ("__Directive", "locations"): len(DirectiveLocation),
    }


class DocumentLimits:
    """Checks one schema's documents against ``limits``; build once per schema."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: Limits,
        list_bounds: Mapping[tuple[str, str], ListBound] | None = None,
    ) -> None:
        self._schema = schema
        self._limits = limits
        self._bounds: dict[tuple[str, str], ListBound] = {
            **_introspection_bounds(schema),
            **(list_bounds or {}),
        }

    @property
    def limits(self) -> Limits:
        return self._limits

    def check(self, document: DocumentNode) -> list[GraphQLError]:
        """The first limit the document exceeds, as one error; [] when within them all."""
        try:
            _Walk(self, document).run()
        except _Refused as refused:
            nodes = [refused.node] if refused.node is not None else None
            return [GraphQLError(refused.message, nodes, extensions={"code": CODE})]
        return []


class _Walk:
    def __init__(self, owner: DocumentLimits, document: DocumentNode) -> None:
        self._owner = owner
        self._limits = owner._limits
        self._schema = owner._schema
        self._bounds = owner._bounds
        self._document = document
        self._fragments: dict[str, FragmentDefinitionNode] = {}
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self._fragments.setdefault(definition.name.value, definition)
        self._summaries: dict[str, _Summary] = {}

    def run(self) -> None:
        self._summarise_fragments()
        limits = self._limits
        for definition in self._document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            root = self._schema.get_root_type(definition.operation)
            summary = self._selection(definition.selection_set, root, 0, None)
            name = f"'{definition.name.value}'" if definition.name else "The operation"
            if summary.depth > limits.max_depth:
                raise _Refused(
                    f"{name} is nested {summary.depth} fields deep; at most {limits.max_depth}",
                    definition,
                )
            if summary.aliases > limits.max_aliases:
                raise _Refused(
                    f"{name} has {_count(summary.aliases)} aliases, counted through its "
                    f"fragments; at most {limits.max_aliases}",
                    definition,
                )
            if summary.items > limits.max_list_items:
                raise _Refused(
                    f"{name} asks for up to {_count(summary.items)} list items, counted "
                    f"through its fragments; at most {limits.max_list_items}",
                    definition,
                )
            if summary.cost > limits.max_cost:
                raise _Refused(
                    f"{name} could return {_count(summary.cost)} values, counted through its "
                    f"fragments and list sizes; at most {limits.max_cost}",
                    definition,
                )

    # --- fragments, in dependency order, without recursion -------------------------

    def _summarise_fragments(self) -> None:
        """Every fragment's summary, each computed once, its spreads' first.

        An explicit stack instead of recursion: the path on it is the chain of
        spreads being followed, so its length is the nesting, checked as it grows.
        """
        done = self._summaries
        on_path: set[str] = set()
        most = self._limits.max_fragment_nesting
        for start in self._fragments:
            if start in done:
                continue
            stack: list[tuple[str, list[str]]] = [(start, self._spreads_of(start))]
            on_path.add(start)
            while stack:
                name, pending = stack[-1]
                if pending:
                    child = pending.pop()
                    if child in done or child not in self._fragments:
                        continue
                    if child in on_path:
                        raise _Refused(
                            f"Cannot spread fragment '{child}' within itself.",
                            self._fragments[child],
                        )
                    if len(stack) >= most:
                        raise _Refused(
                            f"Fragments are spread more than {most} deep (from fragment '{start}')",
                            self._fragments[start],
                        )
                    on_path.add(child)
                    stack.append((child, self._spreads_of(child)))
                    continue
                stack.pop()
                on_path.discard(name)
                fragment = self._fragments[name]
                parent = self._schema.get_type(fragment.type_condition.name.value)
                done[name] = self._selection(fragment.selection_set, parent, 0, None)

    def _spreads_of(self, name: str) -> list[str]:
        found: list[str] = []
        sets: list[SelectionSetNode] = [self._fragments[name].selection_set]
        while sets:
            for selection in sets.pop().selections:
                if isinstance(selection, FragmentSpreadNode):
                    found.append(selection.name.value)
                elif selection.selection_set is not None:  # type: ignore[attr-defined]
                    sets.append(selection.selection_set)  # type: ignore[attr-defined]
        return found

    # --- one selection set, with its fragments' summaries known ----------------------

    def _selection(
        self, selection_set: SelectionSetNode, parent: Any, level: int, page: int | None
    ) -> _Summary:
        # ``level`` counts nested selection sets, inline fragments included: the
        # walk stops before Python's recursion limit could, whatever the depth rule.
        if level > 2 * self._limits.max_depth + 2:
            raise _Refused(
                f"The operation is nested too deeply; at most {self._limits.max_depth} fields",
                selection_set,
            )
        depth = aliases = cost = width = items = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                summary = self._field(selection, parent, level, page)
            elif isinstance(selection, FragmentSpreadNode):
                summary = self._summaries.get(selection.name.value, _EMPTY)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                summary = self._selection(selection.selection_set, inner, level + 1, page)
            else:  # pragma: no cover - the parser makes no other selection
                continue
            depth = max(depth, summary.depth)
            aliases += summary.aliases
            cost += summary.cost
            width += summary.width
            items += summary.items
        if width > self._limits.max_selections:
            raise _Refused(
                f"A selection set selects {_count(width)} fields, counted through its "
                f"fragments; at most {self._limits.max_selections}",
                selection_set,
            )
        return _Summary(depth, aliases, cost, width, items)

    def _field(self, node: FieldNode, parent: Any, level: int, page: int | None) -> _Summary:
        aliases = 1 if node.alias is not None else 0
        field_type, items, is_list, counted = self._field_type(node, parent, page)
        own = items if is_list and counted else 0
        if node.selection_set is None:
            return _Summary(0, aliases, items, 1, own)
        inner = self._selection(node.selection_set, field_type, level + 1, _page_of(node))
        return _Summary(
            1 + inner.depth,
            aliases + inner.aliases,
            items * (1 + inner.cost),
            1,
            own + items * inner.items,
        )

    def _field_type(
        self, node: FieldNode, parent: Any, page: int | None
    ) -> tuple[Any, int, bool, bool]:
        """The field's named type, how many items it returns at most (1 if not a
        list), whether it is a list, and whether its items count as list items."""
        name = node.name.value
        if name == "__typename":
            return None, 1, False, True
        if name == "__schema" and parent is self._schema.query_type:
            definition: Any = SchemaMetaFieldDef
        elif name == "__type" and parent is self._schema.query_type:
            definition = TypeMetaFieldDef
        else:
            fields = getattr(parent, "fields", None)
            definition = fields.get(name) if isinstance(fields, dict) else None
        if definition is None:
            return None, 1, False, True  # unknown: graphql-core's validation says so
        t, items, is_list, counted = definition.type, 1, False, True
        while isinstance(t, GraphQLNonNull | GraphQLList):
            if isinstance(t, GraphQLList):
                bound = self._bounds.get((parent.name, name))
                if isinstance(bound, Points):
                    items *= bound.most
                    counted = False
                else:
                    items *= self._list_bound(parent.name, name, node, page)
                is_list = True
            t = t.of_type
        return t, items, is_list, counted

    def _list_bound(self, parent: str, field: str, node: FieldNode, page: int | None) -> int:
        literal = _page_of(node)
        if literal is not None:
            return literal
        bound = self._bounds.get((parent, field), self._limits.default_list_bound)
        if bound == PAGE:
            return page if page is not None else self._limits.default_list_bound
        if isinstance(bound, Points):  # pragma: no cover - _field_type handles these
            return bound.most
        if isinstance(bound, tuple):
            _, arg_name, most = bound
            for arg in node.arguments or ():
                if arg.name.value == arg_name and isinstance(arg.value, ListValueNode):
                    return len(arg.value.values)
            return most
        return int(bound)


def _page_of(node: FieldNode) -> int | None:
    """The literal ``first``/``last`` of a field, if it has one."""
    for arg in node.arguments or ():
        if arg.name.value in ("first", "last") and isinstance(arg.value, IntValueNode):
            try:
                return max(0, int(arg.value.value))
            except ValueError:
                return None
    return None


def _count(n: int) -> str:
    # Counts through doubled spreads reach 2^60 and more: say so without 19 digits.
    return f"{n:,}" if n < 10**9 else "more than 1,000,000,000"
