"""BibTeX of papers that more than one part of the project cites (a dataset page and a zoo card, say)."""
from __future__ import annotations

UNMASKING_DEEPFAKES = """@article{durall2019unmasking,
  title={Unmasking DeepFakes with simple Features},
  author={Durall, Ricard and Keuper, Margret and Pfreundt, Franz-Josef and Keuper, Janis},
  journal={arXiv preprint arXiv:1911.00686},
  year={2019}
}"""

SPECTRAL_DEFENSE = """@inproceedings{harder2021spectraldefense,
  title={SpectralDefense: Detecting Adversarial Attacks on CNNs in the Fourier Domain},
  author={Harder, Paula and Pfreundt, Franz-Josef and Keuper, Margret and Keuper, Janis},
  booktitle={2021 International Joint Conference on Neural Networks (IJCNN)},
  pages={1--8},
  year={2021},
  doi={10.1109/IJCNN52387.2021.9533442}
}"""
