"""The prompt of a generative response model: control prefix, dialogue history, and the customer's turn.

Conditioning on intent, journey stage and channel is a control line in the system message
(``[intent: TransferMoney | stage: support | channel: chat]``), written only for the fields a record has.
Placeholders become slot tokens (``{{Order Number}}`` -> ``[order_number]``) in prompts and targets, as in
the retrieval path, so the model learns one token pattern per slot and never a value for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from csml.records import Record
from csml.response.placeholders import to_slot_tokens

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptFormat:
    """How conversations become prompt text; saved with the model so serving builds the same prompts.

    Attributes:
        system: The system instruction.
        control_fields: Record fields written into the control line when set.
        max_history_turns: Earlier turns kept (the most recent ones).
        use_chat_template: Use the tokenizer's chat template when it has one (else ``role: text`` lines).
    """

    system: str = "You are a helpful, professional customer-service agent. Answer the customer directly."
    control_fields: tuple[str, ...] = ("intent", "stage", "channel")
    max_history_turns: int = 4
    use_chat_template: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["control_fields"] = list(self.control_fields)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptFormat:
        values = dict(data)
        values["control_fields"] = tuple(values.get("control_fields", ()))
        return cls(**values)

    def messages(self, turns: Sequence[Mapping[str, str]], controls: Mapping[str, str | None]) -> list[dict]:
        """Chat messages: system (instruction + control line), then the last turns, slot tokens applied.

        Args:
            turns: The conversation, oldest first, as ``{"role": "user" | "assistant", "content": ...}``;
                system messages in it are appended to the instruction.
            controls: Values of the control fields (missing or ``None`` ones are left out).
        """
        system = [self.system]
        dialogue = []
        for i, turn in enumerate(turns):
            role, content = turn.get("role"), turn.get("content")
            if role not in ROLES or not isinstance(content, str):
                raise ValueError(f"message {i}: needs role in {ROLES} and string content, got {dict(turn)!r}")
            if role == "system":
                system.append(content)
            else:
                dialogue.append({"role": role, "content": to_slot_tokens(content)})
        if not dialogue or dialogue[-1]["role"] != "user":
            raise ValueError("a conversation must end with a user message (the turn to answer)")
        dialogue = dialogue[-(self.max_history_turns + 1) :]
        line = " | ".join(f"{f}: {controls[f]}" for f in self.control_fields if controls.get(f))
        if line:
            system.append(f"[{line}]")
        return [{"role": "system", "content": "\n".join(system)}, *dialogue]

    def render(self, tokenizer: Any, messages: list[dict]) -> str:
        """Prompt text ending where the agent's reply starts."""
        if self.use_chat_template and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def record_prompt(self, tokenizer: Any, record: Record) -> str:
        """The prompt of a training / evaluation pair (history from ``record.context``)."""
        return self.render(tokenizer, self.messages(record_turns(record), record_controls(record)))


def record_turns(record: Record) -> list[dict[str, str]]:
    """A record's conversation as messages: ``context`` alternates and ends with an agent turn."""
    n = len(record.context)
    turns = [
        {"role": "assistant" if (n - i) % 2 == 1 else "user", "content": text}
        for i, text in enumerate(record.context)
    ]
    return [*turns, {"role": "user", "content": record.text}]


def record_controls(record: Record) -> dict[str, str | None]:
    """Intent, stage and channel of a record (control-line values)."""
    return {"intent": record.intent, "stage": record.stage.value, "channel": record.channel.value}


def response_target(response: str) -> str:
    """The training target of a reply: placeholders as slot tokens."""
    return to_slot_tokens(response)
