"""The upload form. It checks shapes of fields only; services do the rest."""
from __future__ import annotations

from django import forms

from evaluation.detectors.formats import DEFAULT_INPUT_SIZE, INPUT_SIZE_RANGE, ArtifactFormat
from evaluation.protocols import get_protocol, list_analyses
from models_zoo.registry import get_card, uploadable_names
from spectra.benchmarks.models import Benchmark
from spectra.submissions.models import FORMAT_CHOICES


def analysis_choices() -> list[tuple[str, str]]:
    return [(name, get_protocol(name).title) for name in list_analyses()]


def architecture_choices() -> list[tuple[str, str]]:
    """The zoo's detector architectures (torch-free), for a safetensors upload."""
    return [("", "— (ONNX or TorchScript)")] + [(name, f"{name}: {get_card(name).title}") for name in uploadable_names()]


class SubmissionForm(forms.Form):
    name = forms.CharField(max_length=120, required=False, help_text="Shown on the leaderboard.")
    benchmark = forms.ModelChoiceField(queryset=Benchmark.objects.all(), to_field_name="slug", empty_label=None)
    format = forms.ChoiceField(
        choices=FORMAT_CHOICES, initial=ArtifactFormat.ONNX.value,
        help_text="ONNX is recommended (data only). Safetensors weights need a zoo architecture (data only). "
                  "TorchScript is loaded only inside the evaluation sandbox.",
    )
    architecture = forms.ChoiceField(
        choices=architecture_choices, required=False, label="Zoo architecture",
        help_text="Only for safetensors: the model zoo architecture the weights belong to (its state dict layout).",
    )
    input_size = forms.IntegerField(
        min_value=INPUT_SIZE_RANGE[0], max_value=INPUT_SIZE_RANGE[1], initial=DEFAULT_INPUT_SIZE,
        help_text="The detector receives N×3×S×S RGB floats in [0, 1] with S = this size.",
    )
    source = forms.CharField(
        max_length=100, required=False, label="Trained on",
        help_text="The generator subset the detector was trained on (e.g. vae). Its validation split fixes the "
                  "threshold carried to every generator; blank uses every validation image.",
    )
    file = forms.FileField(allow_empty_file=True, help_text="A .onnx file, a .safetensors state dict, or a .pt made with torch.jit.save. Pickled checkpoints are refused.")
    private = forms.BooleanField(
        required=False, label="Private",
        help_text="Only you and the site's staff see it: its page, results and leaderboard rows are hidden from others.",
    )
    analyses = forms.MultipleChoiceField(
        choices=analysis_choices, required=False, widget=forms.CheckboxSelectMultiple, label="Analyses",
        help_text="Besides accuracy and the robustness sweeps, which every submission gets. Each runs on a sample of "
                  "the test images and costs several minutes on the mini benchmark; they need a TorchScript upload "
                  "(gradients) and say \"not applicable\" otherwise.",
    )
