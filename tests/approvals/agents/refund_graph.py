"""The LangGraph example of docs/agents.md, exactly: a refund agent whose `approval` node
asks a person through Signoff and pauses with `interrupt()` until the answer arrives.

Run as a script, it is one process of the test's two:
    python -m tests.approvals.agents.refund_graph ask    SIGNOFF_URL TOKEN DB THREAD
    python -m tests.approvals.agents.refund_graph resume SIGNOFF_URL TOKEN DB THREAD
"""

from __future__ import annotations

import json
import sqlite3
import sys
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from approvals.client import Signoff


class Refund(TypedDict, total=False):
    order: str
    amount: float
    ask_id: int
    decision: dict[str, Any]
    refunded: dict[str, Any] | None


def build(signoff: Signoff, checkpointer: Any) -> Any:
    def propose(state: Refund) -> Refund:
        # Deterministic here; a language model would choose the amount.
        return {"amount": 120.0}

    def approval(state: Refund, config: RunnableConfig) -> Refund:
        # The node runs again from the top when resumed: the Idempotency-Key (one per thread)
        # makes that second ask answer the first one's request instead of asking twice.
        ask = signoff.ask(
            title=f"Refund order {state['order']}",
            action="send_refund",
            arguments={"order": state["order"], "amount": state["amount"]},
            roles=["finance"],
            expires_in="PT4H",
            idempotency_key=f"refund-{config['configurable']['thread_id']}",
        )
        decision = interrupt({"ask_id": ask.id})  # pauses here until Command(resume=...)
        return {"ask_id": ask.id, "decision": decision}

    def act(state: Refund) -> Refund:
        decision = state["decision"]
        if decision["event"] in ("APPROVE", "APPROVE_WITH_CHANGES"):
            return {"refunded": decision["arguments"]}  # as approved: maybe edited
        return {"refunded": None}

    graph = StateGraph(Refund)
    graph.add_node("propose", propose)
    graph.add_node("approval", approval)
    graph.add_node("act", act)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "approval")
    graph.add_edge("approval", "act")
    graph.add_edge("act", END)
    return graph.compile(checkpointer=checkpointer)


def ask_phase(signoff: Signoff, checkpointer: Any, thread: str) -> int:
    """Run until the graph pauses; the process may then exit."""
    config = {"configurable": {"thread_id": thread}}
    result = build(signoff, checkpointer).invoke({"order": "1234"}, config)
    return result["__interrupt__"][0].value["ask_id"]


def resume_phase(signoff: Signoff, checkpointer: Any, thread: str) -> Refund:
    """In another process, later: wait for the person, then resume the paused graph."""
    config = {"configurable": {"thread_id": thread}}
    graph = build(signoff, checkpointer)
    (task,) = graph.get_state(config).tasks
    ask_id = task.interrupts[0].value["ask_id"]
    answer = signoff.wait(ask_id)
    decision = (
        {"event": answer.decision.event, "arguments": answer.arguments}
        if answer.decision
        else {"event": "TIMED_OUT", "arguments": None}
    )
    return graph.invoke(Command(resume=decision), config)


if __name__ == "__main__":
    phase, url, token, path, thread = sys.argv[1:6]
    signoff = Signoff(url, token)
    with sqlite3.connect(path, check_same_thread=False) as connection:
        saver = SqliteSaver(connection)
        if phase == "ask":
            print(json.dumps({"ask_id": ask_phase(signoff, saver, thread)}))
        else:
            print(json.dumps(resume_phase(signoff, saver, thread)))
