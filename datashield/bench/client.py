"""Times DataSHIELD calls through the published Python client. Usage: client.py URL TOKEN PID REPEAT
Prints JSON: seconds per measure (median of REPEAT) and the server's RSS around a session."""
import json
import statistics
import sys
import time

from datashield import DSLoginBuilder, DSSession
from datashield_base import ModelsClient

url, token, pid, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def median_time(fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


out = {"rss_before_kib": rss_kib()}
start = time.perf_counter()
session = DSSession(DSLoginBuilder().add("bench", url, token=token).build())
session.open()
session.assign_table("D", table="bench.cohort")
first = session.aggregate("meanDS(D$age)")
out["session_to_first_result"] = time.perf_counter() - start
assert "bench" in first, first
out["rss_session_kib"] = rss_kib()


def checked(expr):
    def run():
        result = session.aggregate(expr)
        if session.has_errors():
            raise RuntimeError(session.get_errors())
        return result
    return run


out["meanDS"] = median_time(checked("meanDS(D$bmi)"))
out["table2DDS"] = median_time(checked("table2DDS(D$sex, D$site)"))
out["quantileMeanDS"] = median_time(checked("quantileMeanDS(D$bmi)"))
models = ModelsClient(session)
out["glm_gaussian"] = median_time(lambda: models.get_glm(formula="D$bmi ~ D$age + D$sex + D$site + D$smoker", family="gaussian"))
out["glm_binomial"] = median_time(lambda: models.get_glm(formula="D$diabetes ~ D$age + D$sex + D$site + D$smoker", family="binomial"))
out["rss_after_kib"] = rss_kib()
session.close()
print(json.dumps(out))
