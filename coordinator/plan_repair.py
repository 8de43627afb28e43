"""Repairing a plan by code before refusing it: what a weak planner gets wrong that has one
obvious mend. SmolLM2's plans matched the schema and were refused, one after another, for a
module that depends on itself, a dependency cycle of two modules, and two criteria called D1;
asked again with the reason, it made another such slip. Each mend here is said in the pane;
what has no obvious mend (a module with no file of its own left) is left to
`decompose.check_plan` to refuse, and the planner is asked again.

A pure function: `repair_plan(plan)` gives the mended plan and one sentence per mend.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from coordinator.decompose import RESERVED, agent_key
from protocol.plan import ID_MAX, NAME_MAX, DodCriterion, Module, Plan


@dataclass(frozen=True)
class Repaired:
    plan: Plan
    mends: list[str] = field(default_factory=list)


def repair_plan(plan: Plan) -> Repaired:
    """`plan` with its obvious slips mended, or `plan` itself when it has none."""
    mends: list[str] = []
    modules = _distinct_names(list(plan.modules), mends)
    modules = _files_owned_once(modules, mends)
    modules = _known_dependencies(modules, mends)
    modules = _no_cycles(modules, mends)
    dod = _distinct_criteria(list(plan.dod), mends)
    if not mends:
        return Repaired(plan)
    # A weak model repeats itself: SmolLM2 listed one bad dependency three times.
    return Repaired(
        plan.model_copy(update={"modules": modules, "dod": dod}), list(dict.fromkeys(mends))
    )


# --- names ------------------------------------------------------------------------------------


def _distinct_names(modules: list[Module], mends: list[str]) -> list[Module]:
    """Every module a name its agent can be told apart by: a reserved or empty one is named
    after its first file, and a name used twice (or too alike) gets a number."""
    taken: set[str] = set()
    named = []
    for module in modules:
        name = module.name
        if agent_key(name) in RESERVED:
            name = PurePosixPath(module.files[0].path).stem[:NAME_MAX] or "module"
            if agent_key(name) in RESERVED:
                name = "module"
        number = 2
        while agent_key(name) in taken:
            suffix = f"-{number}"
            name = f"{module.name[: NAME_MAX - len(suffix)]}{suffix}"
            number += 1
        taken.add(agent_key(name))
        if name != module.name:
            mends.append(
                f"module {module.name!r} is named {name!r}: its agent needs a name of its own"
            )
            module = module.model_copy(update={"name": name})
        named.append(module)
    return named


# --- files ------------------------------------------------------------------------------------


def _files_owned_once(modules: list[Module], mends: list[str]) -> list[Module]:
    """Each file written by one module: the first that lists it. A module left with no file
    is dropped, and what depended on it depends on the module that has its files."""
    owner: dict[str, str] = {}
    kept: list[Module] = []
    merged: dict[str, str] = {}  # dropped module -> the module that owns its first file
    for module in modules:
        own = []
        for planned in module.files:
            if planned.path in owner:
                if owner[planned.path] != module.name:
                    mends.append(
                        f"{planned.path} is written by {owner[planned.path]} only, "
                        f"not by {module.name} too"
                    )
                continue
            owner[planned.path] = module.name
            own.append(planned)
        if not own:
            merged[module.name] = owner[module.files[0].path]
            mends.append(f"module {module.name} is dropped: {merged[module.name]} writes its files")
            continue
        if len(own) < len(module.files):
            module = module.model_copy(update={"files": own})
        kept.append(module)
    if not merged:
        return kept
    return [
        m.model_copy(update={"depends_on": [merged.get(d, d) for d in m.depends_on]}) for m in kept
    ]


# --- dependencies -----------------------------------------------------------------------------


def _known_dependencies(modules: list[Module], mends: list[str]) -> list[Module]:
    """Dependencies on modules of the plan only: one named by a file or an agent key of a
    module means that module; itself, an unknown name, and a builder waiting on a tester
    (tests come after what they test, never before) are dropped."""
    by_name = {m.name: m for m in modules}
    aliases: dict[str, str] = {}
    for module in modules:
        for planned in module.files:
            aliases.setdefault(planned.path, module.name)
            aliases.setdefault(PurePosixPath(planned.path).stem, module.name)
            aliases.setdefault(planned.path.removesuffix(".py").replace("/", "."), module.name)
        aliases.setdefault(agent_key(module.name), module.name)
    mended = []
    for module in modules:
        deps: list[str] = []
        for dep in module.depends_on:
            meant = dep if dep in by_name else aliases.get(dep, aliases.get(agent_key(dep)))
            if meant is None:
                mends.append(f"module {module.name} depended on {dep!r}, which is not in the plan")
            elif meant == module.name:
                mends.append(f"module {module.name} no longer depends on itself")
            elif module.role == "builder" and by_name[meant].role == "tester":
                mends.append(
                    f"module {module.name} no longer waits for the tests of {meant}: "
                    "tests come after what they test"
                )
            elif meant not in deps:
                deps.append(meant)
        if deps != module.depends_on:
            module = module.model_copy(update={"depends_on": deps})
        mended.append(module)
    return mended


def _no_cycles(modules: list[Module], mends: list[str]) -> list[Module]:
    """Each dependency cycle broken at the edge that goes against the plan's order (a module
    waiting on one listed after it): planners are asked to list modules in build order."""
    graph = {m.name: list(m.depends_on) for m in modules}
    place = {m.name: i for i, m in enumerate(modules)}
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            break
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]  # [a, b, ..., a]: each waits for the one before it
            edges = [(cycle[i + 1], cycle[i]) for i in range(len(cycle) - 1)]
            backwards = [(u, v) for u, v in edges if place[v] > place[u]]
            waiter, waited = (backwards or edges)[0]
            graph[waiter].remove(waited)
            shown = " -> ".join(reversed(cycle))
            mends.append(f"dependency cycle {shown} broken: {waiter} no longer waits for {waited}")
    return [
        m.model_copy(update={"depends_on": graph[m.name]}) if graph[m.name] != m.depends_on else m
        for m in modules
    ]


# --- criteria ---------------------------------------------------------------------------------


def _distinct_criteria(dod: list[DodCriterion], mends: list[str]) -> list[DodCriterion]:
    """Criteria with ids of their own: a criterion given twice is kept once, and a second
    criterion under a used id gets the next free id of its kind (D1 twice: D1 and D2)."""
    seen: set[tuple[str, str]] = set()
    used = {c.id for c in dod}
    ids: set[str] = set()
    kept = []
    for criterion in dod:
        what = (criterion.verification_type.value, criterion.target_file.strip())
        if what in seen:
            mends.append(f"criterion {criterion.id} is dropped: it checks what another does")
            continue
        seen.add(what)
        if criterion.id in ids:
            fresh = _fresh_id(criterion.id, used)
            used.add(fresh)
            mends.append(f"the second criterion {criterion.id} is called {fresh}")
            criterion = criterion.model_copy(update={"id": fresh})
        ids.add(criterion.id)
        kept.append(criterion)
    return kept


def _fresh_id(taken_id: str, used: set[str]) -> str:
    prefix = taken_id.rstrip("0123456789")[: ID_MAX - 3] or "D"
    number = 1
    while f"{prefix}{number}" in used:
        number += 1
    return f"{prefix}{number}"
