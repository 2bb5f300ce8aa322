"""API of submissions: create by upload (token), read status and results."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.detectors.formats import DEFAULT_INPUT_SIZE, INPUT_SIZE_RANGE
from evaluation.protocols import list_analyses
from spectra.benchmarks.selectors import benchmark_get
from spectra.core.errors import ApplicationError, NotFoundError
from spectra.submissions import selectors
from spectra.submissions.models import FORMAT_CHOICES, Result, Submission
from spectra.submissions.reproduce import reproductions
from spectra.submissions.services.submissions import submission_create


class ProgressOutput(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    stage = serializers.CharField()


class SubmissionOutput(serializers.ModelSerializer):
    benchmark = serializers.CharField(source="benchmark.slug")
    owner = serializers.CharField(source="owner.username")
    artifact_sha256 = serializers.CharField(source="artifact.sha256")
    artifact_format = serializers.CharField(source="artifact.format")
    architecture = serializers.CharField(source="artifact.architecture", help_text="The zoo architecture of a "
                                         "safetensors artifact (blank for ONNX and TorchScript).")
    input_size = serializers.IntegerField(source="artifact.input_size")
    manifest_sha256 = serializers.CharField(source="dataset.manifest_sha256")
    progress = serializers.SerializerMethodField()
    isolation = serializers.SerializerMethodField(help_text="What isolated the detector while it ran (the weakest "
                                                  "any shard reported): sandbox, network, filesystem, user, limits.")

    class Meta:
        model = Submission
        fields = [
            "id", "name", "owner", "benchmark", "private", "analyses", "status", "error", "error_kind", "created", "started", "finished",
            "artifact_sha256", "artifact_format", "architecture", "input_size", "manifest_sha256", "progress",
            "isolation",
        ]

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_isolation(self, submission: Submission) -> dict | None:
        return selectors.submission_isolation(submission=submission)

    @extend_schema_field(ProgressOutput)
    def get_progress(self, submission: Submission) -> dict[str, object]:
        progress = selectors.submission_progress(submission=submission)
        return {"done": progress.done, "total": progress.total, "stage": progress.stage}


class ResultOutput(serializers.ModelSerializer):
    variant = serializers.CharField(source="dataset.variant", help_text="The dataset version these numbers are on.")
    reproduce = serializers.SerializerMethodField(help_text='The `python -m evaluation` command that prints these '
                                                  'numbers again, with "$DETECTOR" and "$DATASET" for the two files.')

    class Meta:
        model = Result
        fields = [
            "variant", "protocol", "protocol_version", "condition", "subset", "metrics", "intervals", "schema_version", "evaluator_version",
            "manifest_sha256", "artifact_sha256", "config", "created", "reproduce",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reproduce(self, result: Result) -> str | None:
        found = self.context.get("reproductions", {}).get((result.dataset_id, result.protocol))
        return found.command if found else None


class SubmissionCreateApi(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        benchmark = serializers.SlugField()
        file = serializers.FileField(allow_empty_file=True)  # the service explains how to export instead
        format = serializers.ChoiceField(choices=FORMAT_CHOICES)
        input_size = serializers.IntegerField(min_value=INPUT_SIZE_RANGE[0], max_value=INPUT_SIZE_RANGE[1], default=DEFAULT_INPUT_SIZE)
        architecture = serializers.CharField(max_length=100, required=False, default="", allow_blank=True,
                                             help_text="With format=safetensors: the zoo architecture of the weights "
                                                       "(default: the file's spectra.architecture metadata).")
        name = serializers.CharField(max_length=120, required=False, default="")
        source = serializers.CharField(max_length=100, required=False, default="", allow_blank=True,
                                       help_text="The generator it was trained on; fixes the carried threshold.")
        private = serializers.BooleanField(required=False, default=False,
                                           help_text="Visible only to you and staff (others get 404).")
        # Names are checked by the service, whose refusal lists the valid ones.
        analyses = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list,
                                         help_text="Analysis protocols to run too (repeat the field for several): "
                                                   f"{', '.join(list_analyses())}.")

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: SubmissionOutput})
    def post(self, request: Request) -> Response:
        data_in = self.InputSerializer(data=request.data)
        data_in.is_valid(raise_exception=True)
        data = data_in.validated_data
        try:
            benchmark = benchmark_get(slug=data["benchmark"])
        except NotFoundError as error:  # a field of the request, not the resource asked for: 400
            raise ApplicationError(error.message) from None
        submission = submission_create(
            owner=request.user, name=data["name"], benchmark=benchmark,
            upload=data["file"], declared_format=data["format"], input_size=data["input_size"], source=data["source"],
            architecture=data["architecture"], private=data["private"], analyses=data["analyses"],
        )
        return Response(SubmissionOutput(selectors.submission_get(pk=submission.pk, user=request.user)).data,
                        status=status.HTTP_201_CREATED)


class SubmissionDetailApi(APIView):
    @extend_schema(responses=SubmissionOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(SubmissionOutput(selectors.submission_get(pk=pk, user=request.user)).data)


class SubmissionResultsApi(APIView):
    @extend_schema(responses=ResultOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        submission = selectors.submission_get(pk=pk, user=request.user)
        results = selectors.result_list(submission=submission)
        context = {"reproductions": reproductions(submission=submission, results=results)}
        return Response(ResultOutput(results, many=True, context=context).data)
