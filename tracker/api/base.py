"""Base of the API views that apply one service to one object named in the URL: validate the
body, find the object, call the service, answer the result serialized; the OpenAPI schema of
that ``POST`` follows from the same declarations. Used by the staff endpoints of this app
(``tracker.api.views``) and of the moderation app (``moderation.api.views``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from core.api.permissions import IsModeratorInGoodStanding
from core.api.schema import FIELD_ERRORS


def responses_schema(
    success_status: int, success: Any, errors: Mapping[int, OpenApiResponse], *, body: bool
) -> dict[int, Any]:
    """The ``responses`` of an operation, by status code in ascending order: ``success`` (a
    serializer class or instance) under ``success_status``, ``FIELD_ERRORS`` under 400 when the
    operation reads a ``body``, and ``errors`` (status code to ``OpenApiResponse``)."""
    responses = {success_status: success, **errors}
    if body:
        responses[status.HTTP_400_BAD_REQUEST] = FIELD_ERRORS
    return dict(sorted(responses.items()))


class ServiceActionMixin:
    """``POST``: validate the body with ``input_serializer_class`` (none: no body is read),
    find the object the URL names (``get_target``), apply the service to it (``perform``) and
    answer ``output_serializer_class`` of what the service returned, with ``success_status``.

    The body is validated before the object is looked up, so a request that is wrong on both
    counts is a 400 (field errors), not a 404. Errors are raised, never answered here: field
    errors by DRF's validation, domain errors (``core.errors``) and ``Http404`` by the
    subclass, all turned into JSON by the API's exception handler.

    A view that sets ``schema_summary`` itself gets the schema of its ``POST`` from its
    declarations (``__init_subclass__``): the request is ``input_serializer_class``, the
    responses are ``output_serializer_class`` under ``success_status``, ``FIELD_ERRORS`` when
    there is a body and ``schema_errors``; ``schema_description`` is the description (the
    shared ``post`` has no docstring of the view's own).
    """

    input_serializer_class: ClassVar[type[BaseSerializer] | None] = None
    output_serializer_class: ClassVar[type[BaseSerializer]]
    success_status: ClassVar[int] = status.HTTP_200_OK
    schema_summary: ClassVar[str] = ""
    schema_description: ClassVar[str] = ""
    schema_errors: ClassVar[Mapping[int, OpenApiResponse]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Attach the ``POST`` schema to a view that sets ``schema_summary`` (see the class);
        intermediate bases, which do not, get none."""
        super().__init_subclass__(**kwargs)
        if "schema_summary" not in cls.__dict__:
            return
        body = cls.input_serializer_class is not None
        post = extend_schema(
            request=cls.input_serializer_class,
            responses=responses_schema(
                cls.success_status, cls.output_serializer_class, cls.schema_errors, body=body
            ),
            summary=cls.schema_summary,
            description=cls.schema_description,
        )
        extend_schema_view(post=post)(cls)

    def get_target(self, **url_kwargs: Any) -> Any:
        """The object the service applies to, from the URL's keyword arguments (``pk``,
        ``username``, ...).

        Raises:
            NotImplementedError: a subclass did not say how to find its object.
        """
        raise NotImplementedError(f"{type(self).__name__} must define get_target")

    def perform(self, target: Any, data: dict[str, Any]) -> Any:
        """Apply the service to ``target`` as ``self.request.user`` with the validated body
        ``data`` (``{}`` without ``input_serializer_class``); return what to serialize.

        Raises:
            NotImplementedError: a subclass did not say which service it calls.
        """
        raise NotImplementedError(f"{type(self).__name__} must define perform")

    def post(self, request: Request, **url_kwargs: Any) -> Response:
        """Validate, find, apply and answer (see the class)."""
        data: dict[str, Any] = {}
        if self.input_serializer_class is not None:
            form = self.input_serializer_class(data=request.data)
            form.is_valid(raise_exception=True)
            data = form.validated_data
        result = self.perform(self.get_target(**url_kwargs), data)
        return Response(self.output_serializer_class(result).data, status=self.success_status)


class StaffActionView(ServiceActionMixin, APIView):
    """A staff-only (``IsModeratorInGoodStanding``) ``POST`` that applies one service to one
    object (see :class:`ServiceActionMixin`)."""

    permission_classes = [IsModeratorInGoodStanding]
