from setuptools import find_packages, setup

setup(
    name="rcnn",
    version="0.1.0",
    description="Region-based object detection: R-CNN, Fast R-CNN and Faster R-CNN on ILSVRC-era backbones",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["rcnn", "rcnn.*", "backbones", "backbones.*"]),
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "pycocotools>=2.0.7",
        "albumentations>=1.4",
        "opencv-python-headless>=4.8",
        "scikit-image>=0.22",
        "numba>=0.60",
        "numpy>=1.24",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
    ],
    extras_require={
        "dev": ["pytest>=8.0", "pytest-xdist>=3.5", "timm>=1.0", "ruff>=0.6"],
        # ONNX export (tools/export.py: torch's dynamo exporter) and inference (tools/infer.py --backend
        # onnxruntime)
        "export": ["onnx>=1.16", "onnxscript>=0.2", "onnxruntime>=1.18"],
    },
)
