#!/bin/sh
set -e
python3 -m venv /tmp/cpvenv
P=/tmp/cpvenv/bin/pip
$P install -U pip
$P install --no-deps --pre cellprofiler-nightly==5.0.0.dev784 cellprofiler-core-nightly==5.0.0.dev784 cellprofiler-library-nightly==5.0.0.dev784 centriole-nightly==5.0.0.dev784
$P install 'boto3>=1.28.41' 'docutils==0.15.2' 'h5py>=3.7.0' 'imageio>=2.31.3' 'Jinja2>=3.1.2' 'joblib>=1.3.2' 'mahotas>=1.4.13' 'matplotlib<4,>=3.1.3' 'numpy<2,>=1.26.4' 'Pillow>=10.0.0,<12' 'pyzmq>=22.3.0' 'sentry-sdk~=2.8.0' 'requests>=2.31.0' 'scikit-image>=0.20.0' 'scipy<1.11,>=1.9.1' 'scyjava>=1.9.1' 'six>=1.16.0' 'tifffile>=2022.4.8' 'rapidfuzz>=3.0.0' packaging importlib_metadata future 'fsspec>=2021.11.0' 'lxml>=4.6.4' 'psutil>=5.9.5' 'zarr>=2.16.1' 'google-cloud-storage~=2.10.0' 'scikit-learn>=1.3.0' 'pydantic>=2.11.4' deprecation
