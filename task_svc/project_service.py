"""The gRPC ProjectService: translates messages to the project, membership and label
operations (task_svc.projects, task_svc.project_members, task_svc.labels) and back."""

from __future__ import annotations

from google.protobuf import empty_pb2

from common.context import claims_var
from common.paging import page_size
from common.preconditions import Preconditions
from common.protoconv import to_timestamp
from task_svc import labels as label_rules
from task_svc.labels import Labels
from task_svc.memberships import Role
from task_svc.models import Label, ProjectMember
from task_svc.permissions import Viewer
from task_svc.project_members import Members
from task_svc.projects import Projects, ProjectView, mask_fields
from taskmgr.task.v1 import project_service_pb2 as pb
from taskmgr.task.v1 import project_service_pb2_grpc

_ROLE_NUMBERS = {role: pb.ProjectRole.Value(f"PROJECT_ROLE_{role.value.upper()}") for role in Role}
_ROLES = {number: role for role, number in _ROLE_NUMBERS.items()}


class ProjectServicer(project_service_pb2_grpc.ProjectServiceServicer):
    def __init__(self, projects: Projects, members: Members, labels: Labels) -> None:
        self._projects = projects
        self._members = members
        self._labels = labels

    def ListProjects(self, request: pb.ListProjectsRequest, context) -> pb.ListProjectsResponse:  # noqa: ANN001, N802
        page, token = self._projects.list(
            _viewer(), request.archived, request.page_token, page_size(request.page_size)
        )
        return pb.ListProjectsResponse(results=[_project(view) for view in page], next_page_token=token)

    def CreateProject(self, request: pb.CreateProjectRequest, context) -> pb.Project:  # noqa: ANN001, N802
        given = request.project
        return _project(self._projects.create(_viewer(), given.name, given.description))

    def GetProject(self, request: pb.GetProjectRequest, context) -> pb.Project:  # noqa: ANN001, N802
        return _project(self._projects.get(_viewer(), request.id))

    def UpdateProject(self, request: pb.UpdateProjectRequest, context) -> pb.Project:  # noqa: ANN001, N802
        given = request.project
        values = {name: getattr(given, name) for name in mask_fields(list(request.update_mask.paths))}
        return _project(
            self._projects.update(_viewer(), given.id, values, Preconditions.from_request(request))
        )

    def ArchiveProject(self, request: pb.ArchiveProjectRequest, context) -> pb.Project:  # noqa: ANN001, N802
        return _project(
            self._projects.set_archived(_viewer(), request.id, True, Preconditions.from_request(request))
        )

    def UnarchiveProject(self, request: pb.UnarchiveProjectRequest, context) -> pb.Project:  # noqa: ANN001, N802
        return _project(
            self._projects.set_archived(_viewer(), request.id, False, Preconditions.from_request(request))
        )

    def DeleteProject(self, request: pb.DeleteProjectRequest, context) -> empty_pb2.Empty:  # noqa: ANN001, N802
        self._projects.delete(_viewer(), request.id, Preconditions.from_request(request))
        return empty_pb2.Empty()

    def ListMembers(self, request: pb.ListMembersRequest, context) -> pb.ListMembersResponse:  # noqa: ANN001, N802
        page, token = self._members.list(
            _viewer(), request.project_id, request.page_token, page_size(request.page_size)
        )
        return pb.ListMembersResponse(results=[_member(member) for member in page], next_page_token=token)

    def AddMember(self, request: pb.AddMemberRequest, context) -> pb.Member:  # noqa: ANN001, N802
        user_id = request.user_id if request.HasField("user_id") else None
        role = _ROLES.get(request.role)
        preconditions = Preconditions.from_request(request)
        return _member(
            self._members.add(_viewer(), request.project_id, user_id, request.username, role, preconditions)
        )

    def UpdateMember(self, request: pb.UpdateMemberRequest, context) -> pb.Member:  # noqa: ANN001, N802
        # The contract refuses an unspecified or unknown role before this runs.
        role = _ROLES[request.role]
        preconditions = Preconditions.from_request(request)
        return _member(
            self._members.change_role(_viewer(), request.project_id, request.user_id, role, preconditions)
        )

    def RemoveMember(self, request: pb.RemoveMemberRequest, context) -> empty_pb2.Empty:  # noqa: ANN001, N802
        preconditions = Preconditions.from_request(request)
        self._members.remove(_viewer(), request.project_id, request.user_id, preconditions)
        return empty_pb2.Empty()

    def ListLabels(self, request: pb.ListLabelsRequest, context) -> pb.ListLabelsResponse:  # noqa: ANN001, N802
        page, token = self._labels.list(
            _viewer(), request.project_id, request.page_token, page_size(request.page_size)
        )
        return pb.ListLabelsResponse(results=[_label(label) for label in page], next_page_token=token)

    def CreateLabel(self, request: pb.CreateLabelRequest, context) -> pb.Label:  # noqa: ANN001, N802
        given = request.label
        preconditions = Preconditions.from_request(request)
        return _label(
            self._labels.create(_viewer(), request.project_id, given.name, given.color, preconditions)
        )

    def UpdateLabel(self, request: pb.UpdateLabelRequest, context) -> pb.Label:  # noqa: ANN001, N802
        given = request.label
        fields = label_rules.mask_fields(list(request.update_mask.paths))
        values = {name: getattr(given, name) for name in fields}
        preconditions = Preconditions.from_request(request)
        return _label(self._labels.update(_viewer(), request.project_id, given.id, values, preconditions))

    def DeleteLabel(self, request: pb.DeleteLabelRequest, context) -> empty_pb2.Empty:  # noqa: ANN001, N802
        self._labels.delete(_viewer(), request.project_id, request.id, Preconditions.from_request(request))
        return empty_pb2.Empty()


def _viewer() -> Viewer:
    claims = claims_var.get()
    assert claims is not None, "every ProjectService method needs a token (the interceptor checks it)"
    return Viewer(user_id=claims.user_id, is_staff=claims.is_staff)


def _project(view: ProjectView) -> pb.Project:
    project = view.project
    return pb.Project(
        id=project.id, name=project.name, description=project.description, archived=project.archived,
        created_by=project.created_by, created_at=to_timestamp(project.created_at),
        updated_at=to_timestamp(project.updated_at), version=project.version,
        my_role=_ROLE_NUMBERS[view.role] if view.role else pb.PROJECT_ROLE_UNSPECIFIED,
    )


def _member(member: ProjectMember) -> pb.Member:
    return pb.Member(
        project_id=member.project_id, user_id=member.user_id, role=_ROLE_NUMBERS[Role(member.role)],
        created_at=to_timestamp(member.created_at),
    )


def _label(label: Label) -> pb.Label:
    return pb.Label(
        id=label.id, project_id=label.project_id, name=label.name, color=label.color,
        created_at=to_timestamp(label.created_at), updated_at=to_timestamp(label.updated_at),
    )
