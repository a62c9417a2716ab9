"""Reference definitions of public model layouts, used only by the tests.

- RobustBench's own architecture files (``wide_resnet.py``, ``dm_wide_resnet.py``, ``resnet.py``)
  are not copied here: :mod:`reference_archs.robustbench` loads them *by file path* from the
  installed ``robustbench==1.1.1`` wheel (``make setup`` installs it with ``--no-deps``; the package
  itself cannot be imported without torchvision). So the reference is upstream's code, unchanged.
- :mod:`reference_archs.others` holds two small layouts written for these tests from the key
  names those code bases save (advertorch's MNIST LeNet5, TRADES' SmallCNN).
"""
