import subprocess
import sys


def test_import_netdsl_loads_no_engine():
    code = ("import sys, netdsl, netdsl.cli, netdsl.backends, netdsl.summary; "
            "bad = [m for m in ('tensorrt', 'tensorrt_rtx', 'openvino', 'pycuda', 'onnx', 'onnxruntime', 'torch', "
            "'scipy', 'h5py', 'tqdm', 'sklearn', 'safetensors')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
