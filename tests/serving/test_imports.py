import subprocess
import sys


def test_serving_imports_no_engine_and_no_ray():
    code = ("import sys, netdsl.serving, netdsl.serving.ray_app, netdsl.cli.serve, netdsl.cli.export; "
            "bad = [m for m in ('ray', 'starlette', 'tritonclient', 'openvino', 'onnx', 'tensorrt_rtx', 'tensorrt')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
