"""An analyst's session through Trellis, with the published DataSHIELD Python clients, unchanged.

Usage: analyst.py URL TOKEN PROJECT. URL is Trellis's address for the project's DataSHIELD
server (https://trellis.example/datashield/<project>); TOKEN a Trellis access token. Prints one
JSON object: for each step, {"ok": result} or {"error": message}, for the Rust test to check.
"""
import json
import sys

from datashield import DSLoginBuilder, DSSession
from datashield_base import StatsClient

url, token, project = sys.argv[1:4]
results = {}
session = None


def step(name, fn):
    try:
        results[name] = {"ok": fn()}
    except Exception as error:  # every failure is a result the test checks
        errors = session.get_errors() if session is not None and session.has_errors() else {}
        detail = {server: (e.get_error() if hasattr(e, "get_error") else str(e)) for server, e in errors.items()}
        results[name] = {"error": str(error), "errors": detail}


logins = DSLoginBuilder().add("trellis", url, token=token).build()
session = DSSession(logins)
step("open", lambda: session.open() or True)
if "error" not in results["open"]:
    stats = StatsClient(session)
    step("tables", lambda: session.tables())
    step("assign", lambda: session.assign_table("D", table=f"{project}.patients") or True)
    step("assign_visits", lambda: session.assign_table("V", table=f"{project}.visits") or True)
    step("mean", lambda: stats.get_mean("D$age"))
    step("levels", lambda: stats.get_levels("D$sex"))
    step("visits_length", lambda: stats.get_length("V$visit"))
    step("refused_function", lambda: session.aggregate("system('ls')"))
    step("refused_small_cells", lambda: session.aggregate("table1DDS(D$rare)"))
    session.close()
print(json.dumps(results, default=str))
