from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
weights = [str(p.relative_to(here)) for p in (here / "weights").glob("*") if p.suffix in (".pth", ".json", ".md")]

setup(
    name="siamtrack",
    version="0.1.0",
    description="Real-time Siamese single-object tracker (SiamFC) for CPU and GPU",
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
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "psutil>=5"]},
    entry_points={"console_scripts": ["siamtrack=tracker.cli:main"]},
    data_files=[("share/siamtrack/weights", weights)] if weights else [],
)
