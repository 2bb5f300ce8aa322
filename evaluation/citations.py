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

ROBUSTNESS_INDICATORS = """@inproceedings{ho2022estimating,
  title={Estimating the Robustness of Classification Models by the Structure of the Learned Feature-Space},
  author={Ho, Kalun and Pfreundt, Franz-Josef and Keuper, Janis and Keuper, Margret},
  booktitle={AAAI Workshop on Adversarial Machine Learning and Beyond},
  year={2022}
}"""

GRADVIS = """@article{chatzimichailidis2019gradvis,
  title={GradVis: Visualization and Second Order Analysis of Optimization Surfaces during the Training of Deep Neural Networks},
  author={Chatzimichailidis, Avraam and Pfreundt, Franz-Josef and Gauger, Nicolas R. and Keuper, Janis},
  journal={arXiv preprint arXiv:1909.12108},
  year={2019}
}"""
