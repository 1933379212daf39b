"""expect_failure.py SECONDS STDERR COMMAND...: runs COMMAND, which must fail
(a non-zero exit) on its own within SECONDS, and writes its standard error
to STDERR. A command still running after SECONDS is killed and fails the
test: the point is that it stops by itself."""
import subprocess
import sys
import time

seconds, stderr_path, command = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
start = time.monotonic()
with open(stderr_path, "w") as stderr:
    try:
        code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=stderr,
                              timeout=seconds).returncode
    except subprocess.TimeoutExpired:
        sys.exit(f"still running after {seconds:g} s: {' '.join(command)}")
elapsed = time.monotonic() - start
if code == 0:
    sys.exit(f"succeeded, but was expected to fail: {' '.join(command)}")
print(f"exit status {code} after {elapsed:.1f} s")
