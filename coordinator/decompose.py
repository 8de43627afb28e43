"""From a plan to task files: one task per module, in dependency order (DESIGN §5)."""

from __future__ import annotations

import graphlib
import re

from protocol import DagError, Task
from protocol.plan import Module, Plan

RESERVED = ("", "explore")  # agent keys a module may not take (the explorer's, or none)


def check_plan(plan: Plan) -> list[str]:
    """Module names in dependency order; `DagError` naming the problem otherwise."""
    # The schema (protocol/plan.py) already holds at least one module, each with a file and
    # a role, and at least one criterion: what is left is what a schema cannot say.
    names = [m.name for m in plan.modules]
    for module in plan.modules:
        if agent_key(module.name) in RESERVED:
            raise DagError(f"module name {module.name!r} is reserved or empty: choose another")
    ids = [c.id for c in plan.dod]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise DagError(f"criterion ids used twice: {', '.join(twice)}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DagError(f"module names used twice: {', '.join(duplicated)}")
    keys = [agent_key(n) for n in names]
    clashing = sorted({n for n, k in zip(names, keys, strict=True) if keys.count(k) > 1})
    if clashing:
        raise DagError(f"module names too alike to tell their agents apart: {', '.join(clashing)}")
    owners: dict[str, str] = {}
    for module in plan.modules:
        for planned in module.files:
            if planned.path in owners and owners[planned.path] != module.name:
                raise DagError(
                    f"{planned.path} is in two modules: {owners[planned.path]} and {module.name}"
                )
            owners[planned.path] = module.name
    graph = {m.name: set(m.depends_on) for m in plan.modules}
    for name, deps in graph.items():
        if name in deps:
            raise DagError(f"module {name} depends on itself")
        unknown = sorted(deps - set(graph))
        if unknown:
            raise DagError(
                f"module {name} depends on modules not in the plan: {', '.join(unknown)}"
            )
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise DagError(f"module dependency cycle: {cycle} (each depends on the next)") from None


def agent_key(name: str) -> str:
    """The part of an agent's name a module gives (see coordinator.decisions.agent_name)."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:50]


def _dependencies(plan: Plan) -> dict[str, set[str]]:
    """Each module's dependencies: the declared ones, and for a test module every module whose
    files it names, so that a tester always sees the source it tests."""
    graph = {m.name: set(m.depends_on) for m in plan.modules}
    for module in plan.modules:
        if module.role != "tester":
            continue
        text = module.description + " " + " ".join(f.purpose + " " + f.path for f in module.files)
        graph[module.name] |= {
            other.name
            for other in plan.modules
            if other.name != module.name
            and other.role != "tester"
            and any(f.path in text or f.path.removesuffix(".py") in text for f in other.files)
        }
    return graph


def plan_to_tasks(plan: Plan, first_id: int = 1) -> list[Task]:
    """One task per module, numbered in dependency order, depending on its modules' tasks."""
    check_plan(plan)
    graph = _dependencies(plan)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise DagError(f"module dependency cycle: {cycle} (each depends on the next)") from None
    by_name = {m.name: m for m in plan.modules}
    ids = {name: first_id + i for i, name in enumerate(order)}
    tasks = []
    for name in order:
        module = by_name[name]
        own = {f.path for f in module.files}
        tasks.append(
            Task(
                id=ids[name],
                title=f"{name}: {module.description}" if module.description else name,
                role=module.role,
                module=name,
                files=[f.path for f in module.files],
                depends_on=sorted(ids[d] for d in graph[name]),
                instructions=_instructions(module, plan, graph[name]),
                dod=[c.id for c in plan.dod if _concerns(c.target_file, own)],
            )
        )
    return tasks


def _concerns(target: str, files: set[str]) -> bool:
    """Whether a criterion's target is one of `files`, or a directory that holds one."""
    target = target.strip().removeprefix("./").rstrip("/")
    return target in files or any(f.startswith(f"{target}/") for f in files if target != ".")


def _instructions(module: Module, plan: Plan, uses_modules: set[str]) -> str:
    lines = [module.description] if module.description else []
    lines += [f"- {f.path}: {f.purpose}" if f.purpose else f"- {f.path}" for f in module.files]
    uses = [m for m in plan.modules if m.name in uses_modules]
    if uses:
        names = ", ".join(f.path for m in uses for f in m.files)
        lines.append(f"It uses: {names}")
    return "\n".join(lines)
