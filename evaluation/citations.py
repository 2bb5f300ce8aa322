"""BibTeX of papers that more than one part of the project cites (a dataset page and a zoo card, say)."""
from __future__ import annotations

UNMASKING_DEEPFAKES = """@article{durall2019unmasking,
  title={Unmasking DeepFakes with simple Features},
  author={Durall, Ricard and Keuper, Margret and Pfreundt, Franz-Josef and Keuper, Janis},
  journal={arXiv preprint arXiv:1911.00686},
  year={2019}
}"""
