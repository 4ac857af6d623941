"""The gRPC CollaborationService: translates messages to task_svc.collaboration's
operations and back."""

from __future__ import annotations

from google.protobuf import empty_pb2

from common.context import claims_var
from common.paging import page_size
from common.preconditions import Preconditions
from common.protoconv import set_timestamp
from task_svc.collaboration import Collaboration
from task_svc.models import Activity, Comment
from task_svc.permissions import Viewer
from taskmgr.task.v1 import collaboration_service_pb2 as pb
from taskmgr.task.v1 import collaboration_service_pb2_grpc

_KINDS = {name.removeprefix("ACTIVITY_KIND_").lower(): number for name, number in pb.ActivityKind.items()}


class CollaborationServicer(collaboration_service_pb2_grpc.CollaborationServiceServicer):
    def __init__(self, collaboration: Collaboration) -> None:
        self._work = collaboration

    def ListComments(self, request: pb.ListCommentsRequest, context) -> pb.ListCommentsResponse:  # noqa: ANN001, N802
        page, token = self._work.comments(
            _viewer(), request.task_id, request.page_token, page_size(request.page_size)
        )
        return pb.ListCommentsResponse(results=[_comment(c) for c in page], next_page_token=token)

    def AddComment(self, request: pb.AddCommentRequest, context) -> pb.Comment:  # noqa: ANN001, N802
        conditions = Preconditions.from_request(request)
        return _comment(self._work.add_comment(_viewer(), request.task_id, request.text, conditions))

    def UpdateComment(self, request: pb.UpdateCommentRequest, context) -> pb.Comment:  # noqa: ANN001, N802
        conditions = Preconditions.from_request(request)
        return _comment(
            self._work.edit_comment(_viewer(), request.task_id, request.id, request.text, conditions)
        )

    def DeleteComment(self, request: pb.DeleteCommentRequest, context) -> empty_pb2.Empty:  # noqa: ANN001, N802
        self._work.delete_comment(_viewer(), request.task_id, request.id, Preconditions.from_request(request))
        return empty_pb2.Empty()

    def ListActivity(self, request: pb.ListActivityRequest, context) -> pb.ListActivityResponse:  # noqa: ANN001, N802
        page, token = self._work.activity(
            _viewer(), request.task_id, request.page_token, page_size(request.page_size)
        )
        return pb.ListActivityResponse(results=[_activity(a) for a in page], next_page_token=token)

    def WatchTask(self, request: pb.WatchTaskRequest, context) -> pb.WatchState:  # noqa: ANN001, N802
        watching = self._work.watch(_viewer(), request.task_id, True, Preconditions.from_request(request))
        return pb.WatchState(task_id=request.task_id, watching=watching)

    def UnwatchTask(self, request: pb.UnwatchTaskRequest, context) -> pb.WatchState:  # noqa: ANN001, N802
        watching = self._work.watch(_viewer(), request.task_id, False, Preconditions.from_request(request))
        return pb.WatchState(task_id=request.task_id, watching=watching)

    def GetWatchState(self, request: pb.GetWatchStateRequest, context) -> pb.WatchState:  # noqa: ANN001, N802
        watching = self._work.is_watching(_viewer(), request.task_id)
        return pb.WatchState(task_id=request.task_id, watching=watching)


def _viewer() -> Viewer:
    claims = claims_var.get()
    assert claims is not None, "every CollaborationService method needs a token (the interceptor checks it)"
    return Viewer(user_id=claims.user_id, is_staff=claims.is_staff)


def _comment(comment: Comment) -> pb.Comment:
    message = pb.Comment(id=comment.id, task_id=comment.task_id, author=comment.author, text=comment.text)
    set_timestamp(message.created_at, comment.created_at)
    set_timestamp(message.updated_at, comment.updated_at)
    return message


def _activity(entry: Activity) -> pb.Activity:
    message = pb.Activity(
        id=entry.id, task_id=entry.task_id, actor=entry.actor, kind=_KINDS[entry.kind],
        field=entry.field, old_value=entry.old_value, new_value=entry.new_value, comment_id=entry.comment_id,
    )
    set_timestamp(message.created_at, entry.created_at)
    return message
