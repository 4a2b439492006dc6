"""A graphql-core executor that completes plain objects without the per-field machinery.

Completing a 50-card feed through graphql-core visits about 600 fields, each with
a Path, a resolve-info object, an awaitable check and a recursive
``complete_value``: that was 76% of the feed's CPU. Most of our output types
are plain data (every selected field is a strawberry "basic" field, i.e. an
attribute read with no resolver, arguments or extensions), so their selection
can be compiled once per operation into a flat plan and projected directly.

The projection is an optimisation only: whenever it meets anything the plan
does not cover exactly (a null in a non-null field, a value the scalar refuses,
a non-list where a list is expected, any exception), it throws the partial
result away and lets graphql-core complete the object the standard way, so
results and errors are graphql-core's own. Basic resolvers only read
attributes, so running them twice is harmless.
"""

from __future__ import annotations

import keyword
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from operator import attrgetter
from typing import Any, Generic, TypeVar, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    GraphQLScalarType,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    type_from_ast,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.resolvers import is_default_resolver
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema import documents

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

# One compiled field: (response name, kind, reader, non-null, payload).
# payload: the coercer for LEAF, the sub-plan for OBJECT, (item non-null,
# item kind, item payload) for LIST.
Step = tuple[str, int, Any, bool, Any]
Plan = tuple[Step, ...]

TYPENAME, LEAF, OBJECT, LIST = range(4)


class _Fallback(Exception):
    """The plan cannot complete this value exactly; graphql-core must."""


def _unwrap(t: GraphQLOutputType) -> tuple[bool, GraphQLOutputType]:
    if isinstance(t, GraphQLNonNull):
        return True, t.of_type
    return False, t


def _reader(field_def: Any) -> Callable[[Any], Any] | None:
    """How to read a basic field from its source, or None if the field is not basic."""
    resolve = field_def.resolve
    # strawberry marks resolvers of fields without resolver, permissions or
    # extensions: they only read an attribute of the source.
    if not is_default_resolver(resolve):
        return None
    definition = field_def.extensions.get("strawberry-definition")
    if definition is not None and definition.default_resolver is getattr:
        # The same read, without strawberry's three-call chain per field.
        return _Attribute(definition.python_name)
    return lambda source: resolve(source, None)


class _Attribute:
    """A read of one attribute, which a generated projector writes as
    ``source.<name>`` when the name is an identifier."""

    __slots__ = ("_get", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._get = attrgetter(name)

    def __call__(self, source: Any) -> Any:
        return self._get(source)

    # Equal reads make equal plans, which share one generated projector (a plan
    # compiled again for a document that is not cached finds it).
    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Attribute) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LEAVES: dict[int, Callable[[Any], Any]] = {}


def _leaf_coercer(t: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    """The type's output coercion, short-cut for values it would return unchanged."""
    found = _LEAVES.get(id(t))
    if found is not None:
        return found
    coerce = t.coerce_output_value
    fn: Callable[[Any], Any]
    if t is GraphQLInt:

        def fn(v: Any) -> Any:
            return v if type(v) is int and _INT_MIN <= v <= _INT_MAX else coerce(v)

    elif t is GraphQLString or t is GraphQLID:

        def fn(v: Any) -> Any:
            return v if type(v) is str else coerce(v)

    elif t is GraphQLBoolean:

        def fn(v: Any) -> Any:
            return v if type(v) is bool else coerce(v)

    elif t is GraphQLFloat:
        # A finite float comes out unchanged (v - v is 0.0 unless v is inf or nan).

        def fn(v: Any) -> Any:
            return v if type(v) is float and v - v == 0.0 else coerce(v)

    elif isinstance(t, GraphQLEnumType):
        # strawberry's enum coercion scans every value; members are few and stable.
        # Keyed with the type too: a str-valued member equals its plain string.
        names: dict[tuple[type, Any], Any] = {}

        def fn(v: Any) -> Any:
            key = (type(v), v)
            try:
                return names[key]
            except KeyError:
                names[key] = out = coerce(v)
                return out
            except TypeError:  # unhashable: not a member anyway
                return coerce(v)

    else:
        fn = coerce
    _LEAVES[id(t)] = fn
    inline = _INLINE_TESTS.get(t)
    if inline is not None:
        _INLINE[fn] = inline
    return fn


# What the short cuts above test, as an expression of ``v`` for a generated
# projector: a value passing it is its own output.
_INLINE_TESTS: dict[Any, str] = {
    GraphQLInt: f"type(v) is int and {_INT_MIN} <= v <= {_INT_MAX}",
    GraphQLString: "type(v) is str",
    GraphQLID: "type(v) is str",
    GraphQLBoolean: "type(v) is bool",
    GraphQLFloat: "type(v) is float and v - v == 0.0",
}
_INLINE: dict[Callable[[Any], Any], str] = {}


def _weak_helpers(executor: Any) -> GraphQLResolveInfoHelpers:
    """graphql-core's resolver helpers, without a reference cycle.

    graphql-core stores helpers bound to the executor on the executor itself, a
    cycle that keeps every request's executor, context, DataLoader caches and
    results alive until the cyclic GC runs. At a few hundred objects per feed
    request that meant a young collection of ~50,000 garbage objects every
    ~60 requests: 15-30 ms stalls, most of the feed's p99. Through a weak proxy
    it all goes by reference counting when the request ends. The executor
    outlives every resolver call (its own coroutines run them), so the proxy is
    never dead when called.
    """
    proxy = weakref.proxy(executor)

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return cast("Awaitable[list[Any]]", proxy.gather_async_work(values))

    def track(values: Sequence[Awaitable[Any]]) -> None:
        proxy.track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


class CompiledExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, plus compiled completion of plain objects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _weak_helpers(self)
        mm = self.middleware_manager
        # A schema extension with a resolve hook must see every field.
        self._compile_ok = mm is None or not mm._middleware_resolvers
        # Shared by every request of the same query text and the same values of
        # the variables its directives read (see _PLANS; compiling on every
        # request was about 8% of a small query's CPU), and so by a
        # subscription's per-event executors (copies of this one). Keyed by the
        # field nodes rather than by the identity of the field details list,
        # which graphql-core rebuilds for every event and request: the nodes
        # come from the one parsed document. An entry keeps its list (and so
        # its nodes) alive, so no id in a key can be reused.
        self._plans: dict[tuple[Any, ...], tuple[FieldDetailsList, Plan | None]] = (
            _PLANS.for_executor(self)
        )

        # Set on per-event copies: the subscription executor they come from, and
        # whether this event's completion stayed on compiled (pure) plans.
        self._event_of: CompiledExecutionContext | None = None
        self._pure = True
        self._share: tuple[Any, ...] | _Unset | None = _UNSET

    # --- variables ----------------------------------------------------------------------
    #
    # graphql-core coerces a list variable item by item (a type walk, a depth
    # check and a scalar parse per item): 40 µs for a feed's 50 ids, about 4% of
    # the request. A str given for an ID or String variable, and a list of plain
    # str for an [ID] or [String] one, come out of that unchanged (a list as an
    # equal copy), so such values are coerced here, and graphql-core coerces the
    # rest (and reports every error) as always.

    @classmethod
    def build(
        cls,
        schema: Any,
        document: Any,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        plain = _plain_strings(schema, document, operation_name, raw_variable_values)
        if plain:
            raw_variable_values = {
                **(raw_variable_values or {}),
                **{name: () if type(v) is list else "" for name, v in plain.items()},
            }
        built = super().build(
            schema,
            document,
            root_value,
            context_value,
            raw_variable_values,
            operation_name,
            *args,
            **kwargs,
        )
        if plain and not isinstance(built, list):
            values = built.variable_values
            for name, value in plain.items():
                values.coerced[name] = list(value) if type(value) is list else value
                values.sources[name] = values.sources[name]._replace(value=value)
        return built

    # --- subscription events ----------------------------------------------------------
    #
    # 1,000 subscribers of one content receive the same push. When the event's
    # whole execution is a pure function of (operation, variables, payload), the
    # first subscriber's result is reused by the others holding the same payload
    # object (resolvers.live hands out one object per message and viewer state).
    # Pure means: the root field is strawberry's subscription field (its
    # per-event resolve returns the payload) and every object below it was
    # completed by a compiled plan of basic fields, which read only attributes.

    def build_per_event_executor(self, payload: Any) -> Any:
        key = self._share_key()
        results = _event_results(self.operation) if key is not None else None
        if key is not None and results is not None:
            hit = results.get((*key, id(payload)))
            if hit is not None and hit[0] is payload:
                # graphql-core only asks the per-event executor to execute:
                # replaying spares copying this executor for every subscriber.
                return _Replay(hit[1])
        executor = cast("CompiledExecutionContext", super().build_per_event_executor(payload))
        # graphql-core's subfield memo is keyed by per-event lists and shared by
        # every event's copy: it would grow by one entry per push, forever.
        executor._relevant_sub_fields = {}
        executor._event_of = self
        executor._pure = True
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        parent = self._event_of
        key = parent._share_key() if parent is not None else None
        if key is None:
            return super().execute_operation(serially)
        # A known result never gets here: build_per_event_executor replays it,
        # and graphql-core executes right after building, with no await between.
        result = super().execute_operation(serially)
        results = _event_results(self.operation)
        if (
            results is not None
            and self._pure
            and isinstance(result, ExecutionResult)
            and not result.errors
        ):
            payload = self.root_value
            results.put((*key, id(payload)), (payload, result))
        return result

    def _share_key(self) -> tuple[Any, ...] | None:
        if self._share is _UNSET:
            self._share = self._compute_share_key()
        return self._share  # type: ignore[return-value]

    def _compute_share_key(self) -> tuple[Any, ...] | None:
        op = self.operation
        selections = op.selection_set.selections
        if op.operation != OperationType.SUBSCRIPTION or len(selections) != 1:
            return None
        node = selections[0]
        if not isinstance(node, FieldNode) or node.directives:
            return None
        root = self.schema.subscription_type
        field_def = root.fields.get(node.name.value) if root is not None else None
        if field_def is None or field_def.subscribe is None or not self._compile_ok:
            return None
        probe = object()
        try:
            if field_def.resolve is None or field_def.resolve(probe, None) is not probe:
                return None
        except Exception:  # a resolve that needs more than the event: not shareable
            return None
        variables = _freeze(self.variable_values.coerced)
        if variables is _UNHASHABLE:
            return None
        # Per operation already: the results live in its document's cache entry.
        return (variables,)

    # --- compilation ---------------------------------------------------------------

    def _plan_for(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Plan | None:
        key = (
            return_type.name,
            *[(id(d.node), id(d.fragment_variable_values)) for d in field_details_list],
        )
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        plan = self._compile(return_type, field_details_list)
        if len(self._plans) >= 512:
            # Keys with per-request parts (fragment variables) never hit again:
            # the shared dict must not grow with them.
            self._plans.clear()
        self._plans[key] = (field_details_list, plan)
        return plan

    def _compile(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Plan | None:
        if return_type.is_type_of is not None:
            return None
        grouped, defer_usages, _ = self.collect_subfields(return_type, field_details_list)
        if defer_usages:
            return None
        steps: list[Step] = []
        for response_name, details in grouped.items():
            field_name = details[0].node.name.value
            if field_name == "__typename":
                steps.append((response_name, TYPENAME, None, True, return_type.name))
                continue
            field_def = return_type.fields.get(field_name)
            if field_def is None or field_def.args:
                return None
            read = _reader(field_def)
            if read is None:
                return None
            non_null, inner = _unwrap(field_def.type)
            step = self._compile_value(inner, details)
            if step is None:
                return None
            kind, payload = step
            steps.append((response_name, kind, read, non_null, payload))
        return tuple(steps)

    def _compile_value(
        self, t: GraphQLOutputType, details: FieldDetailsList
    ) -> tuple[int, Any] | None:
        if isinstance(t, GraphQLScalarType | GraphQLEnumType):
            return LEAF, _leaf_coercer(t)
        if isinstance(t, GraphQLObjectType):
            sub = self._plan_for(t, details)
            return None if sub is None else (OBJECT, sub)
        if isinstance(t, GraphQLList):
            item_non_null, item = _unwrap(t.of_type)
            if isinstance(item, GraphQLList):
                return None  # nested lists: rare, left to graphql-core
            step = self._compile_value(item, details)
            if step is None:
                return None
            return LIST, (item_non_null, step[0], step[1])
        return None  # interfaces and unions need type resolution

    # --- projection -----------------------------------------------------------------

    def _project(self, plan: Plan, source: Any) -> dict[str, Any]:
        return _projector(plan)(source)

    def _project_list(self, spec: tuple[bool, int, Any], values: Any) -> list[Any]:
        item_non_null, kind, payload = spec
        return _items_projector(item_non_null, kind, payload)(values)

    # --- the graphql-core hook --------------------------------------------------------

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if self._compile_ok:
            plan = self._plan_for(return_type, field_details_list)
            if plan is not None:
                try:
                    return self._project(plan, result)
                except Exception:  # graphql-core completes it and reports any error
                    pass
        self._pure = False
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        # A list of plain objects (the feed) is projected in one go, sparing a
        # Path and a complete_value chain per item.
        if self._compile_ok and isinstance(result, list | tuple):
            item_non_null, item = _unwrap(return_type.of_type)
            if isinstance(item, GraphQLObjectType):
                plan = self._plan_for(item, field_details_list)
                if plan is not None:
                    try:
                        return self._project_list((item_non_null, OBJECT, plan), result)
                    except Exception:  # graphql-core completes it and reports any error
                        pass
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def complete_abstract_value(self, *args: Any, **kwargs: Any) -> Any:
        self._pure = False  # type resolution may consult the context
        return super().complete_abstract_value(*args, **kwargs)


class _Unset:
    pass


class _Replay:
    """Stands in for a per-event executor whose result is already known."""

    def __init__(self, result: ExecutionResult) -> None:
        self._result = result

    def execute_operation(self, serially: bool | None = None) -> ExecutionResult:
        return self._result


_UNSET = _Unset()
_UNHASHABLE = object()


def _freeze(value: Any) -> Any:
    """A hashable, order-stable image of coerced variables, or _UNHASHABLE."""
    if isinstance(value, dict):
        items = [(k, _freeze(v)) for k, v in sorted(value.items())]
        return _UNHASHABLE if any(v is _UNHASHABLE for _, v in items) else ("d", tuple(items))
    if isinstance(value, list | tuple):
        frozen = [_freeze(v) for v in value]
        return _UNHASHABLE if any(v is _UNHASHABLE for v in frozen) else ("l", tuple(frozen))
    try:
        hash(value)
    except TypeError:
        return _UNHASHABLE
    return (type(value), value)


class _Fifo(Generic[K, V]):
    """A bounded map, oldest entry out first.

    Its users key by ids and keep the identified objects alive in the entry, so
    the ids in a key stay theirs while the entry exists.
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, entry: V) -> None:
        self._entries[key] = entry
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# The most shared subscription-event results kept per operation, and the most
# plan sets per operation (one per combination of directive variable values).
EVENT_RESULTS_PER_OPERATION = 256
PLAN_SETS_PER_OPERATION = 16


class _OperationPlans:
    """Compiled plans shared across requests of one cached query text, per operation.

    A plan depends on the schema, the operation's field nodes and the values of
    the variables that its @skip/@include directives read (graphql-core decides
    the selection with them); it does not depend on any other variable. The
    state lives in the document cache's entry (``documents.state_of``): a
    document that is not cached shares nothing, and an evicted one takes its
    plans with it. Each plan set keeps its schema alive, so no id in a key is
    reused while it exists.
    """

    def for_executor(self, ex: CompiledExecutionContext) -> dict[Any, Any]:
        state = documents.state_of(ex.operation)
        if state is None:
            return {}
        names = state.get("directive_vars")
        if names is None:
            names = state["directive_vars"] = frozenset(
                _directive_variables(ex.operation, ex.fragments)
            )
        coerced = ex.variable_values.coerced
        values = _freeze({n: coerced.get(n) for n in names}) if names else ()
        if values is _UNHASHABLE:
            return {}
        plan_sets: _Fifo[tuple[Any, ...], tuple[Any, dict[Any, Any]]] = state.setdefault(
            "plans", _Fifo(PLAN_SETS_PER_OPERATION)
        )
        key = (id(ex.schema), ex._compile_ok, values)
        hit = plan_sets.get(key)
        if hit is not None:
            return hit[1]
        plans: dict[Any, Any] = {}
        plan_sets.put(key, (ex.schema, plans))
        return plans


def _event_results(operation: Any) -> _Fifo[tuple[Any, ...], tuple[Any, ExecutionResult]] | None:
    """Shared subscription-event results of a cached operation: (payload, result)."""
    state = documents.state_of(operation)
    if state is None:
        return None
    results = state.get("events")
    if results is None:
        results = state["events"] = _Fifo(EVENT_RESULTS_PER_OPERATION)
    return results


def _directive_variables(op: Any, fragments: Any) -> set[str]:
    """Names of the variables read by directives in the operation and its fragments."""
    found: set[str] = set()
    seen: set[str] = set()
    stack: list[Any] = [op]
    while stack:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            for arg in directive.arguments or ():
                if isinstance(arg.value, VariableNode):
                    found.add(arg.value.name.value)
                else:
                    # A variable nested in a list or object value: keep it all.
                    found.update(_variables_in(arg.value))
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                stack.append(fragments[name])
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return found


def _variables_in(value: Any) -> set[str]:
    if isinstance(value, VariableNode):
        return {value.name.value}
    out: set[str] = set()
    for item in getattr(value, "values", None) or ():
        out |= _variables_in(item)
    for field in getattr(value, "fields", None) or ():
        out |= _variables_in(field.value)
    return out


_PLANS = _OperationPlans()


def _plain_strings(
    schema: Any, document: Any, operation_name: str | None, raw: dict[str, Any] | None
) -> dict[str, str | list[str]]:
    """The variables of the operation typed as ID or String (or a list of them)
    whose given value is a str (a list of str and nothing else), by name."""
    if not raw:
        return {}
    operation = None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if operation_name is None:
                if operation is not None:
                    return {}  # graphql-core reports the ambiguity
                operation = definition
            elif definition.name is not None and definition.name.value == operation_name:
                operation = definition
    if operation is None or not operation.variable_definitions:
        return {}
    state = documents.state_of(operation)
    kinds = state.get("string_variables") if state is not None else None
    if kinds is None:
        kinds = _string_variables(schema, operation)
        if state is not None:
            state["string_variables"] = kinds
    plain: dict[str, str | list[str]] = {}
    for name, is_list in kinds:
        value = raw.get(name)
        if is_list:
            if type(value) is list and all(type(v) is str for v in value):
                plain[name] = value
        elif type(value) is str:
            plain[name] = value
    return plain


def _string_variables(schema: Any, operation: Any) -> tuple[tuple[str, bool], ...]:
    """(name, whether a list) of each variable typed ID, String, [ID] or [String]."""
    found = []
    for node in operation.variable_definitions:
        t = type_from_ast(schema, node.type)
        if isinstance(t, GraphQLNonNull):
            t = t.of_type
        is_list = isinstance(t, GraphQLList)
        if is_list:
            t = t.of_type
            if isinstance(t, GraphQLNonNull):
                t = t.of_type
        if t is GraphQLID or t is GraphQLString:
            found.append((node.variable.name.value, is_list))
    return tuple(found)


# --- generated projectors -------------------------------------------------------------
#
# A plan run step by step costs a loop turn, a tuple unpacking, a kind dispatch and
# two calls per leaf: for 100 ranking signals of 15 leaves that was most of the
# request. Each plan is therefore turned once into a Python function that reads
# its fields as straight-line code (``source.<attribute>``, the short-cut leaf
# tests inline). It does exactly what the step-by-step projection did, and raises
# the same way when graphql-core must complete the value instead.

Projector = Callable[[Any], dict[str, Any]]
# By the plan object (its id; the entry keeps the plan alive, so the id is not
# reused while it is cached), then by its shape (equal plans, one function).
_BY_ID: _Fifo[int, tuple[Plan, Projector]] = _Fifo(4096)
_BY_SHAPE: _Fifo[Plan, Projector] = _Fifo(1024)


def _projector(plan: Plan) -> Projector:
    hit = _BY_ID.get(id(plan))
    if hit is not None and hit[0] is plan:
        return hit[1]
    fn = _BY_SHAPE.get(plan)
    if fn is None:
        # A read that is not an attribute is a new function for each compilation:
        # its plan would never be found again, so it is run step by step.
        plain = all(
            kind == TYPENAME or isinstance(read, _Attribute) for _, kind, read, _, _ in plan
        )
        fn = _generate(plan) if plain else partial(_interpret, plan)
        _BY_SHAPE.put(plan, fn)
    _BY_ID.put(id(plan), (plan, fn))
    return fn


def _interpret(plan: Plan, source: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind, read, non_null, payload in plan:
        if kind == TYPENAME:
            out[name] = payload
            continue
        value = read(source)
        if value is None:
            if non_null:
                raise _Fallback
            out[name] = None
        elif kind == LEAF:
            out[name] = _leaf(payload, value)
        elif kind == OBJECT:
            out[name] = _projector(payload)(value)
        else:
            out[name] = _items_projector(*payload)(value)
    return out


def _leaf_expression(coerce: Callable[[Any], Any], name: str) -> str:
    test = _INLINE.get(coerce)
    call = f"_leaf({name}, v)"
    return call if test is None else f"v if {test} else {call}"


def _generate(plan: Plan) -> Callable[[Any], dict[str, Any]]:
    env: dict[str, Any] = {"_Fallback": _Fallback, "_leaf": _leaf}
    body = ["def project(source):", "    out = {}"]
    for i, (name, kind, read, non_null, payload) in enumerate(plan):
        key = repr(name)
        if kind == TYPENAME:
            env[f"t{i}"] = payload
            body.append(f"    out[{key}] = t{i}")
            continue
        if (
            isinstance(read, _Attribute)
            and read.name.isidentifier()
            and not keyword.iskeyword(read.name)
        ):
            body.append(f"    v = source.{read.name}")
        else:
            env[f"r{i}"] = read
            body.append(f"    v = r{i}(source)")
        body.append("    if v is None:")
        body.append("        raise _Fallback" if non_null else f"        out[{key}] = None")
        body.append("    else:")
        if kind == LEAF:
            env[f"c{i}"] = payload
            value = _leaf_expression(payload, f"c{i}")
        elif kind == OBJECT:
            env[f"p{i}"] = _projector(payload)
            value = f"p{i}(v)"
        else:
            env[f"p{i}"] = _items_projector(*payload)
            value = f"p{i}(v)"
        body.append(f"        out[{key}] = {value}")
    body.append("    return out")
    # The text is built above from identifiers and reprs only.
    exec("\n".join(body), env)
    return cast("Callable[[Any], dict[str, Any]]", env["project"])


# Immutable values that readers share for a while: a ranking-signals cache hands
# the same object to every request within its time to live (domain/ranking.py).
# A plan's projection of one is kept with it, so a list of a hundred shared items
# costs a hundred lookups rather than a hundred projections. Only for types whose
# instances can never change (registered with ``share_projections``): the kept
# answer is handed to every later request.
SHARED_PROJECTIONS = 10_000
_SHARED_TYPES: set[type] = set()
# By (projector id, value id); the entry keeps both alive, so neither id is reused.
_SHARED: _Fifo[tuple[int, int], tuple[Projector, Any, dict[str, Any]]] = _Fifo(SHARED_PROJECTIONS)


def share_projections(cls: type[T]) -> type[T]:
    """Mark ``cls`` (an immutable type, such as a NamedTuple of immutable values) as
    one whose projections may be kept and handed to every request."""
    _SHARED_TYPES.add(cls)
    return cls


def _shared(item: Projector, value: Any) -> dict[str, Any]:
    key = (id(item), id(value))
    hit = _SHARED.get(key)
    if hit is not None and hit[0] is item and hit[1] is value:
        return hit[2]
    out = item(value)
    _SHARED.put(key, (item, value, out))
    return out


def _items_projector(item_non_null: bool, kind: int, payload: Any) -> Callable[[Any], list[Any]]:
    item = _projector(payload) if kind == OBJECT else None
    shared = _SHARED_TYPES

    def project(values: Any) -> list[Any]:
        if not isinstance(values, list | tuple):
            raise _Fallback  # iterables, async iterables, wrong types: graphql-core
        out: list[Any] = []
        for value in values:
            if value is None:
                if item_non_null:
                    raise _Fallback
                out.append(None)
            elif item is None:
                out.append(_leaf(payload, value))
            elif type(value) in shared:
                out.append(_shared(item, value))
            else:
                out.append(item(value))
        return out

    return project


def _leaf(coerce: Callable[[Any], Any], value: Any) -> Any:
    out = coerce(value)
    if out is None or out is Undefined:
        raise _Fallback
    return out
