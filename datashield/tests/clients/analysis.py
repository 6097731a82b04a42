"""A whole DataSHIELD analysis through the published Python clients, unchanged.

Usage: analysis.py URL TOKEN TABLE WORKDIR. Prints one JSON object: for each step, {"ok": result}
or {"error": message}, so the Rust test can compare every result with base R's.
"""
import json
import pathlib
import sys
import traceback

from datashield import DSLoginBuilder, DSSession
from datashield_base import ModelsClient, PlotsClient, StatsClient

url, token, table, workdir = sys.argv[1:5]
results = {}


def step(name, fn):
    try:
        results[name] = {"ok": fn()}
    except Exception as error:  # every failure is a result the test checks
        errors = session.get_errors() if session.has_errors() else {}
        # What each server answered: Opal's error document (status, arguments) or the message.
        detail = {server: (e.get_error() if hasattr(e, "get_error") else str(e)) for server, e in errors.items()}
        results[name] = {"error": str(error), "errors": detail, "type": type(error).__name__}
        if "--trace" in sys.argv:
            traceback.print_exc(file=sys.stderr)


logins = DSLoginBuilder().add("trellis", url, token=token).build()
session = DSSession(logins)
session.open()
stats = StatsClient(session)
models = ModelsClient(session)
plots = PlotsClient(session)

step("profiles", lambda: session.profiles())
step("tables", lambda: session.tables())
step("variables", lambda: session.variables(table))
step("aggregate_methods", lambda: sorted(m["name"] for m in session.methods("aggregate")["trellis"]))
step("assign_table", lambda: session.assign_table("D", table=table, variables=["age", "bmi", "sex", "site", "diabetes", "visits", "smoker"]) or True)
step("ls", lambda: session.ls())
step("classes", lambda: stats.get_classes("D$age"))
step("class_frame", lambda: stats.get_classes("D"))
step("length", lambda: stats.get_length("D$age"))
step("dimensions", lambda: stats.get_dimensions("D"))
step("names", lambda: session.aggregate("colnamesDS('D')"))
step("levels", lambda: stats.get_levels("D$site"))
step("is_valid", lambda: stats.is_valid("D$age"))
step("mean", lambda: stats.get_mean("D$bmi"))
step("var", lambda: session.aggregate("varDS(D$bmi)"))
step("quantile_means", lambda: stats.get_quantile_means("D$bmi"))
step("frequencies", lambda: stats.get_frequencies("D$site"))
step("crosstab", lambda: stats.get_crosstab("D$sex", "D$site"))
step("num_na", lambda: session.aggregate("numNaDS(D$bmi)"))
step("correlation", lambda: session.aggregate("corDS('D$age', 'D$bmi')"))
step("settings", lambda: session.aggregate("listDisclosureSettingsDS()"))
step("histogram_range", lambda: session.aggregate("histogramDS1(D$age, method.indicator=1, k=3, noise=0.25)"))
step("histogram", lambda: session.aggregate("histogramDS2(D$age, num.breaks=10, min=10, max=100, method.indicator=1, k=3, noise=0.25)"))
step("histogram_plot", lambda: sorted(plots.get_histogram("D$age", output_folder=pathlib.Path(workdir)).keys()))
step("glm_gaussian", lambda: models.get_glm(formula="D$bmi ~ D$age + D$site", family="gaussian"))
step("glm_binomial", lambda: models.get_glm(formula="D$diabetes ~ D$age + D$sex", family="binomial"))
step("glm_poisson", lambda: models.get_glm(formula="D$visits ~ D$age", family="poisson"))
step("assign_expr", lambda: session.assign_expr("age2", "D$age*2") or True)
step("mean_assigned", lambda: session.aggregate("meanDS(age2)"))
step("as_factor", lambda: session.assign_expr("visitsf", "asFactorDS2('D$visits', '0,1,2,3,4,5,6,7,8,9,10,11,12')") or True)
step("subset", lambda: session.assign_expr("older", "dataFrameSubsetDS2('D', 'D$age', '50', 6, NULL, NULL, FALSE)") or True)
step("subset_dimensions", lambda: stats.get_dimensions("older"))
step("tiny", lambda: session.assign_expr("tiny", "dataFrameSubsetDS2('D', 'D$age', '89', 5, NULL, NULL, FALSE)") or True)
step("refused_unknown_function", lambda: session.aggregate("system('ls')"))
step("refused_nested_function", lambda: session.aggregate("meanDS(get('D'))"))
step("refused_parse", lambda: session.aggregate("meanDS(D$age"))
step("refused_top_level_operator", lambda: session.aggregate("D$age + 1"))
step("failed_missing_symbol", lambda: session.aggregate("meanDS(nothere$age)"))
step("rm", lambda: session.rm("age2") or session.ls())
step("rm_ds", lambda: session.aggregate("rmDS('visitsf')"))
step("ls_after_rm_ds", lambda: session.ls())
session.close()
print(json.dumps(results, default=str))
