"""Times DataSHIELD calls. Usage: client.py URL TOKEN PID REPEAT
The published client sleeps 100 ms after every call it makes (datashield's DSSession._do_wait),
so server times are taken with the same HTTP requests the client sends, made directly; GLMs are
also fitted through the client (ModelsClient.get_glm) and their calls replayed directly.
Prints JSON: seconds per measure (median, min, max of REPEAT) and the server's RSS."""
import json
import statistics
import sys
import time

import requests
from datashield import DSLoginBuilder, DSSession
from datashield_base import ModelsClient

url, token, pid, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
http = requests.Session()
http.headers.update({"X-Opal-Auth": token, "Accept": "application/json"})


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def timed(fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def checked(response):
    response.raise_for_status()
    return response


def open_session():
    return checked(http.post(f"{url}/ws/datashield/sessions")).json()["id"]


def assign(session):
    checked(http.put(f"{url}/ws/datashield/session/{session}/symbol/D/table/bench.cohort?async=false"))


def aggregate(session, expr):
    return checked(http.post(f"{url}/ws/datashield/session/{session}/aggregate?async=false", data=expr,
                             headers={"Content-Type": "application/x-rscript"})).json()


out = {"rss_before_kib": rss_kib()}
start = time.perf_counter()
session = open_session()
assign(session)
aggregate(session, "meanDS(D$age)")
out["session_to_first_result"] = time.perf_counter() - start
out["rss_session_kib"] = rss_kib()
for name, expr in [("meanDS", "meanDS(D$bmi)"), ("table2DDS", "table2DDS(D$sex, D$site)"),
                   ("quantileMeanDS", "quantileMeanDS(D$bmi)")]:
    out[name] = timed(lambda: aggregate(session, expr))

client = DSSession(DSLoginBuilder().add("bench", url, token=token).build())
client.open()
client.assign_table("D", table="bench.cohort")
sent = []
asynchronous_aggregate = client.aggregate


def recording(expr, asynchronous=True, conn_names=None):
    sent.append(expr)
    return asynchronous_aggregate(expr, asynchronous, conn_names)


client.aggregate = recording
models = ModelsClient(client)
for family, formula in [("gaussian", "D$bmi ~ D$age + D$sex + D$site + D$smoker"),
                        ("binomial", "D$diabetes ~ D$age + D$sex + D$site + D$smoker")]:
    sent.clear()
    out[f"glm_{family}_client"] = timed(lambda: models.get_glm(formula=formula, family=family))
    calls = sent[: len(sent) // repeat]
    out[f"glm_{family}_calls"] = len(calls)
    out[f"glm_{family}"] = timed(lambda: [aggregate(session, expr) for expr in calls])
client.close()
out["rss_after_kib"] = rss_kib()
print(json.dumps(out))
