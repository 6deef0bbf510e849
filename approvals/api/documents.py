"""/api/v1/instances/{id}/artifacts/...: a request's documents over the API (docs/api.md).

Thin views over approvals/services/artifacts.py, with the API's permissions (404 for a request
the caller may not see), throttles and Idempotency-Key."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api import selectors
from approvals.api.errors import NotFound
from approvals.api.idempotency import idempotent
from approvals.api.parsers import JSONParser
from approvals.api.throttling import ReadThrottle, WriteThrottle
from approvals.api.views import IDEMPOTENCY_PARAMETER, READ_ERRORS, WRITE_ERRORS
from approvals.models import ArtifactVersion, Channel, WorkflowInstance
from approvals.services.artifacts import Upload, artifact_add


class ArtifactVersionSerializer(serializers.Serializer):
    name = serializers.CharField(source="artifact.name")
    version = serializers.IntegerField(source="number")
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    media_type = serializers.CharField(help_text="Sniffed from the content.")
    parent = serializers.SerializerMethodField(help_text="The version this one supersedes.")
    added_by = serializers.CharField(source="added_by.username")
    added_at = serializers.DateTimeField()

    def get_parent(self, version: ArtifactVersion) -> int | None:
        return version.number - 1 if version.parent_id else None


class ArtifactSerializer(serializers.Serializer):
    name = serializers.CharField()
    versions = ArtifactVersionSerializer(many=True)


class ArtifactInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The artifact's name, e.g. quote.")
    file = serializers.FileField(required=False, allow_empty_file=True, use_url=False)
    text = serializers.CharField(
        required=False, trim_whitespace=False, allow_blank=True, help_text="Instead of a file."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


def _instance(request: Request, pk: int) -> WorkflowInstance:
    instance = selectors.visible_instance(request.user, pk)
    if instance is None:
        raise NotFound()
    return instance


def _versions(instance: WorkflowInstance) -> list[ArtifactVersion]:
    return list(
        ArtifactVersion.objects.filter(artifact__instance=instance)
        .select_related("artifact", "added_by")
        .order_by("artifact__name", "number")
    )


def _version(request: Request, pk: int, name: str, number: int) -> ArtifactVersion:
    version = (
        ArtifactVersion.objects.filter(
            artifact__instance=_instance(request, pk), artifact__name=name, number=number
        )
        .select_related("artifact", "added_by")
        .first()
    )
    if version is None:
        raise NotFound()
    return version


def _file_digest(file: Any) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


class ArtifactList(APIView):
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, JSONParser]

    def get_throttles(self) -> list[Any]:
        return [WriteThrottle()] if self.request.method == "POST" else [ReadThrottle()]

    @extend_schema(
        operation_id="instances_artifacts_list",
        summary="The request's documents, each with its versions (oldest first)",
        responses={200: ArtifactSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        grouped: dict[str, list[ArtifactVersion]] = {}
        for version in _versions(_instance(request, pk)):
            grouped.setdefault(version.artifact.name, []).append(version)
        data = [{"name": name, "versions": versions} for name, versions in grouped.items()]
        return Response(ArtifactSerializer(data, many=True).data)

    @extend_schema(
        operation_id="instances_artifacts_add",
        summary="Add a version of a document (multipart/form-data: name, file or text, note)",
        request={"multipart/form-data": ArtifactInput, "application/json": ArtifactInput},
        responses={201: ArtifactVersionSerializer, **WRITE_ERRORS},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, pk: int) -> Response:
        now = timezone.now()
        instance = _instance(request, pk)
        serializer = ArtifactInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        file = data.get("file")
        # Idempotency compares the body; for a file that is its bytes, not only its name.
        body = {
            "name": data["name"],
            "note": data.get("note", ""),
            "text": data.get("text"),
            "file": [file.name, file.size, _file_digest(file)] if file is not None else None,
        }

        def add() -> Response:
            version = artifact_add(
                instance_id=instance.pk,
                upload=Upload(
                    name=data["name"],
                    file=file,
                    text=data.get("text"),
                    note=data.get("note", ""),
                ),
                actor=request.user,
                now=now,
                channel=Channel.API,
            )
            return Response(ArtifactVersionSerializer(version).data, status=status.HTTP_201_CREATED)

        return idempotent(request, now, add, body=body)


class ArtifactVersionDetail(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="instances_artifacts_version",
        summary="One version's metadata",
        responses={200: ArtifactVersionSerializer, **READ_ERRORS},
    )
    def get(self, request: Request, pk: int, name: str, number: int) -> Response:
        return Response(ArtifactVersionSerializer(_version(request, pk, name, number)).data)


class ArtifactVersionContent(APIView):
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="instances_artifacts_content",
        summary="One version's bytes, as an attachment",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The bytes; Content-Type is the version's media_type, sent with "
                "Content-Disposition: attachment and X-Content-Type-Options: nosniff.",
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: int, name: str, number: int) -> FileResponse:
        version = _version(request, pk, name, number)
        try:
            handle = default_storage.open(version.storage_key, "rb")
        except FileNotFoundError:
            raise NotFound("The stored file is missing.") from None
        response = FileResponse(
            handle, as_attachment=True, filename=version.filename, content_type=version.media_type
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response
