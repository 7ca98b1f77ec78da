"""Packaging for neuroemu: the packages hw_models, converter, emulator and the neuroemu facade."""

from setuptools import setup

EXTRAS = {
    "onnx": ["onnx>=1.14"],
    "nir": ["nir>=1.0"],
    "aedat": ["lz4>=4.0"],
    "demo": ["scikit-learn>=1.3"],
    "sanafe": ["sanafe>=2.2"],  # benchmarks/sanafe_compare.py only (GPL-3.0, not imported)
    "dask": ["distributed>=2023.1"],
    # pytest-xdist: the suite runs on a worker process per core (pyproject.toml, addopts);
    # much of its time is the one-off compilation of the engine for each dtype combination
    "test": ["pytest>=7", "pytest-xdist>=3.0", "hypothesis>=6", "onnx>=1.14", "nir>=1.0",
             "lz4>=4.0",
             "scikit-learn>=1.3", "distributed>=2023.1",
             # tests/test_qcfs.py checks the QCFS import against onnxruntime (no torch needed)
             "onnxruntime>=1.16"],
}
EXTRAS["dev"] = sorted(set(sum(EXTRAS.values(), [])) | {"ruff"})
# loading an exported NIR file in snnTorch (tests/test_nir_interop.py; skipped without it).
# Not in "dev" or "test": it pulls PyTorch, which neuroemu never needs.
EXTRAS["nir-frameworks"] = ["nir>=1.0", "snntorch>=0.9", "nirtorch>=2.0"]
# the real frameworks, only for regenerating the model zoo by hand (tests/zoo/make_zoo.py); in a
# separate venv, never needed to import, convert, run or test (so not part of "dev" or "test").
# The committed zoo was written with torch 2.13 (dynamo exporter: opsets 17-23 through
# onnxscript's converter) and snnTorch 1.0.0 + nir 1.0.8 + nirtorch 2.6 (export_to_nir).
EXTRAS["zoo"] = ["tensorflow>=2.16", "tf-keras>=2.16", "keras>=3.0", "torch>=2.5",
                 "tf2onnx>=1.16", "onnx>=1.14", "onnxscript>=0.2", "onnxruntime>=1.16",
                 "nir>=1.0.8", "nirtorch>=2.0", "snntorch>=1.0", "scikit-learn>=1.3"]

setup(
    name="neuroemu",
    version="0.1.0",
    description="Event-driven neuromorphic hardware emulator for converted CNNs",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["hw_models", "converter", "emulator", "neuroemu"],
    package_data={"neuroemu": ["assets/*"]},
    include_package_data=True,
    install_requires=[
        "numpy>=1.24",
        "numba>=0.58",
        "scipy>=1.10",
        "h5py>=3.8",
        "matplotlib>=3.7",
        "tqdm>=4.60",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["neuroemu=neuroemu.cli:main"]},
)
