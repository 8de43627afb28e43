"""The shared language of the team: messages, mailboxes, tasks, the `.agents/` layout.

Both the coordinator and the agent workers import this package; it imports nothing of theirs
and does no orchestration (DESIGN §2).
"""

from protocol.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from protocol.layout import InboxPaths, Layout, NotATeamWorkspace
from protocol.locks import LockTimeout, file_lock, try_lock
from protocol.mailbox import (
    Delivered,
    InboxEntry,
    Mailbox,
    MessageTooLarge,
    UnknownRecipient,
    create_inbox,
    list_inbox,
)
from protocol.messages import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    Completion,
    ErrorCategory,
    ErrorReport,
    FileCheck,
    FileEdit,
    Guidance,
    Message,
    Payload,
    PlanApproval,
    ProgressUpdate,
    ShutdownRequest,
    ShutdownResponse,
    TaskAssignment,
    make_message,
    message_json_schema,
    summarize,
)
from protocol.receiver import Delivery, InboxBusy, Receiver
from protocol.tasks import DagError, Task, TaskStatus, check_dag, ready_ids
from protocol.taskstore import (
    IllegalTransition,
    TaskFileError,
    TaskStore,
    TransitionConflict,
    UnknownTask,
)
from protocol.team import COORDINATOR, USER, TeamFileError, TeamInfo, TeamStatus
from protocol.wire import BadMessage, parse_message, parse_payload

__all__ = [
    "COORDINATOR",
    "MESSAGE_ADAPTER",
    "MESSAGE_TYPES",
    "USER",
    "BadMessage",
    "Completion",
    "DagError",
    "Delivered",
    "Delivery",
    "ErrorCategory",
    "ErrorReport",
    "FileCheck",
    "FileEdit",
    "Guidance",
    "IllegalTransition",
    "InboxBusy",
    "InboxEntry",
    "InboxPaths",
    "Layout",
    "LockTimeout",
    "Mailbox",
    "Message",
    "MessageTooLarge",
    "NotATeamWorkspace",
    "Payload",
    "PlanApproval",
    "ProgressUpdate",
    "Receiver",
    "ShutdownRequest",
    "ShutdownResponse",
    "Task",
    "TaskAssignment",
    "TaskFileError",
    "TaskStatus",
    "TaskStore",
    "TeamFileError",
    "TeamInfo",
    "TeamStatus",
    "TransitionConflict",
    "UnknownRecipient",
    "UnknownTask",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_dag",
    "create_inbox",
    "file_lock",
    "list_inbox",
    "make_message",
    "message_json_schema",
    "parse_message",
    "parse_payload",
    "ready_ids",
    "summarize",
    "try_lock",
]
