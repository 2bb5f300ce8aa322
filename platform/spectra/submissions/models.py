"""Uploaded detector artifacts, submissions, their evaluation runs, results and stored scores."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from evaluation.detectors.formats import DEFAULT_INPUT_SIZE, FORMAT_TITLES, ArtifactFormat
from evaluation.metrics import ScoreKind
from spectra.benchmarks.models import Benchmark, Dataset

FORMAT_CHOICES = [(fmt.value, FORMAT_TITLES[fmt]) for fmt in ArtifactFormat]


class Artifact(models.Model):
    """A detector file, stored once per owner under its sha256."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="artifacts")
    format = models.CharField(max_length=20, choices=FORMAT_CHOICES)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    input_size = models.PositiveIntegerField(default=DEFAULT_INPUT_SIZE, help_text="Declared H = W of the detector's input.")
    architecture = models.CharField(max_length=100, blank=True,
                                    help_text="The models_zoo architecture a safetensors file holds the weights of.")
    file = models.FileField(upload_to="artifacts/", max_length=500)
    original_name = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "sha256", "input_size", "architecture"],
                                               name="unique_artifact")]

    def __str__(self) -> str:
        return f"{self.format}:{self.sha256[:12]}"

    @property
    def extension(self) -> str:
        return {ArtifactFormat.ONNX: "onnx", ArtifactFormat.SAFETENSORS: "safetensors"}.get(self.format, "pt")


class SubmissionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Submission(models.Model):
    name = models.CharField(max_length=120)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="submissions")
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT, related_name="submissions")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="submissions")
    zoo_entry = models.CharField(max_length=100, blank=True, help_text="The models_zoo entry this baseline row is.")
    zoo_trained_on = models.CharField(max_length=40, blank=True,
                                      help_text="The dataset variant a zoo row was trained on (biased, unbiased…).")
    private = models.BooleanField(default=False, help_text="Visible only to its owner and staff: its page, results, "
                                  "leaderboard rows and artifact are not found (404) for anyone else.")
    source = models.CharField(max_length=100, blank=True, help_text="The generator the detector was trained on: "
                              "its validation split fixes the carried threshold (blank: every validation image).")
    analyses = models.JSONField(default=list, blank=True, help_text="The analysis protocols the submitter asked for "
                                "(evaluation.protocols.list_analyses), run besides the protocols every submission gets.")
    status = models.CharField(max_length=20, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED)
    error = models.TextField(blank=True, help_text="What went wrong, in plain words.")
    error_kind = models.CharField(max_length=20, blank=True, help_text="user: the detector's fault; platform: ours.")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"


class EvaluationRun(models.Model):
    """One shard (protocol × dataset version × row range) of a submission; unique so a retried shard overwrites."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs",
                                help_text="The dataset version this shard reads.")
    protocol = models.CharField(max_length=50)
    protocol_version = models.PositiveIntegerField()
    shard = models.PositiveIntegerField(default=0)
    split = models.CharField(max_length=20, default="test")
    first_row = models.PositiveIntegerField(default=0)
    last_row = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=SubmissionStatus.choices, default=SubmissionStatus.QUEUED)
    stage = models.CharField(max_length=20, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    heartbeat = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="The evaluation worker that ran it.")
    attempt = models.PositiveIntegerField(default=1, help_text="Sent again by the reaper as a new attempt; "
                                          "messages of an older attempt are ignored.")
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker started it.")
    lease_expires = models.DateTimeField(null=True, blank=True, db_index=True,
                                         help_text="Renewed by every heartbeat; the reaper acts once it passes.")
    isolation = models.JSONField(default=dict, blank=True, help_text="What isolated the detector (the sandbox).")
    error = models.TextField(blank=True, help_text="Why this shard failed, in plain words.")
    config = models.JSONField(default=dict, blank=True, help_text="Settings over the protocol's defaults that this "
                              "run was sent with (SPECTRA_ANALYSIS_CONFIG, an analysis's attack mode).")
    analysis = models.JSONField(default=dict, blank=True, help_text="An analysis protocol's outputs besides the "
                                "per-image scores (ShardDone.analysis), from which its other numbers are computed.")
    not_applicable = models.TextField(blank=True, help_text="Why the protocol does not apply to this detector "
                                      "(a capability it lacks); such a run is done, with no numbers.")

    class Meta:
        ordering = ["submission", "protocol", "shard"]
        constraints = [models.UniqueConstraint(fields=["submission", "protocol", "shard"], name="unique_shard")]

    def __str__(self) -> str:
        return f"{self.submission_id}:{self.protocol}#{self.shard}"


class Result(models.Model):
    """The metrics of one protocol on one subset, with everything needed to trace the numbers."""

    SCHEMA_VERSION = 3  # v2: recomputed from the scores, with intervals; v3: per dataset version and condition

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="results")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="results")
    protocol = models.CharField(max_length=50)
    condition = models.CharField(max_length=50, blank=True, default="", help_text='A perturbation, e.g. "jpeg-90"; "" is clean.')
    protocol_version = models.PositiveIntegerField()
    subset = models.CharField(max_length=100, help_text='A generator subset, or "mean" over them.')
    metrics = models.JSONField()
    intervals = models.JSONField(default=dict, blank=True, help_text="metric -> [low, high], 95 % stratified bootstrap")
    schema_version = models.PositiveIntegerField(default=SCHEMA_VERSION)
    evaluator_version = models.CharField(max_length=40)
    manifest_sha256 = models.CharField(max_length=64)
    artifact_sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict, blank=True, help_text="Settings over the protocol's defaults that "
                              "produced these numbers (empty: the defaults of its version).")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["submission", "dataset", "protocol", "condition", "subset"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "dataset", "protocol", "condition", "subset"],
                                    name="unique_result_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.submission_id}:{self.protocol}:{self.subset}"


class ImageScores(models.Model):
    """Per-image scores of one run, compressed: a new metric never re-runs a detector."""

    run = models.OneToOneField(EvaluationRun, on_delete=models.CASCADE, related_name="scores")
    count = models.PositiveIntegerField()
    conditions = models.JSONField(default=list, blank=True,
                                  help_text='The scores\' rows: one per condition ("" is clean); empty means [""].')
    row_ids = models.BinaryField(blank=True, default=b"",
                                 help_text="zlib-compressed little-endian int64 manifest line numbers (empty when "
                                           "`stored` names an object)")
    scores = models.BinaryField(blank=True, default=b"",
                                help_text="zlib-compressed little-endian float32 scores of 'generated' (of `kind`), "
                                          "conditions × count, row-major (empty when `stored` names an object)")
    stored = models.CharField(max_length=200, blank=True, default="",
                              help_text="Under SPECTRA_STORAGE=s3: the object in the store that holds both streams "
                                        "(spectra.submissions.scorefiles); empty when they are in this row.")
    # Rows stored before evaluator 0.3 hold probabilities (the migration marks them); they stay recomputable.
    kind = models.CharField(max_length=20, choices=[(k.value, k.value) for k in ScoreKind], default=ScoreKind.LOGIT,
                            help_text="logit: the detector's logits; probability: the float32 probabilities "
                                      "stored before evaluator 0.3 (they tie at 1.0 for logits above ~17)")


class EvaluationWorker(models.Model):
    """An evaluation worker as it last announced itself (every few seconds, busy or idle)."""

    name = models.CharField(max_length=200, unique=True)
    last_seen = models.DateTimeField(db_index=True)
    evaluator_version = models.CharField(max_length=40)
    sandbox = models.CharField(max_length=300, help_text='"bubblewrap", or why the worker has none.')

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BrokerIncarnation(models.Model):
    """The broker's identity as the reaper last saw it (Redis's run id): a new one means a restart, which
    loses the queued messages of a broker that does not persist them."""

    identity = models.CharField(max_length=100)
    seen = models.DateTimeField()
