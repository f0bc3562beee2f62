"""The shipped Prometheus alerting rules (envoy/prometheus/): valid by `promtool check rules`,
each rule firing and staying silent as its unit tests say (`promtool test rules`), and a real
Prometheus scraping a real Envoy's /stats/prometheus sees the per-reason rejection counter,
with its labels, once forged callbacks were sent."""
import subprocess

from harness import FORM_TYPE, ROOT, Prometheus, vobiz_headers, wait_for

RULES = ROOT / "envoy/prometheus"


def promtool(*args):
    return subprocess.run(["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid_and_each_fires_and_stays_silent_as_its_tests_say():
    checked = promtool("check", "rules", "callback-guard.rules.yaml")
    assert checked.returncode == 0 and "SUCCESS: 10 rules found" in checked.stdout, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "callback-guard.rules.test.yaml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout + tested.stderr, tested.stdout + tested.stderr
    # One firing and one silent case for every rule.
    rules = {line.split(":", 1)[1].strip() for line in (RULES / "callback-guard.rules.yaml").read_text().splitlines()
             if line.strip().startswith("- alert:")}
    tests = (RULES / "callback-guard.rules.test.yaml").read_text()
    for rule in rules:
        assert f"name: {rule} fires" in tests and f"name: {rule} stays silent" in tests, rule


def test_prometheus_scrapes_the_rejection_counter_by_reason_from_envoy(envoy, workdir):
    prometheus = Prometheus(workdir, [envoy], rules=[RULES / "callback-guard.rules.yaml"])
    try:
        counter = 'callback_guard_rejected{route="vobiz-voice",reason="signature_mismatch"}'
        before = sum(float(r["value"][1]) for r in prometheus.query(counter))
        forged = 5
        with envoy.https_client() as client:
            for _ in range(forged):
                headers = {**dict([FORM_TYPE]), **vobiz_headers("/vobiz/answer", token="not-the-token")}
                assert client.post("/vobiz/answer", headers=headers, content=b"x=1").status_code == 403
        wait_for(lambda: sum(float(r["value"][1]) for r in prometheus.query(counter)) >= before + forged,
                 timeout=60, what="the forged callbacks counted in Prometheus")
        [series] = prometheus.query(counter)
        assert {"route": "vobiz-voice", "reason": "signature_mismatch"}.items() <= series["metric"].items()
        # The rules loaded, and every one of them evaluates cleanly against the live series.
        def rules():
            return prometheus.get("rules")["groups"]

        assert {g["name"] for g in rules()} == {"callback-guard-attacks", "callback-guard-operations"}
        wait_for(lambda: all(r["health"] == "ok" for g in rules() for r in g["rules"]),
                 timeout=60, what="every rule evaluated")
    finally:
        prometheus.stop()
