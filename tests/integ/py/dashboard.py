#!/usr/bin/python3
"""Drives the broker's web dashboard in headless Chromium (Debian's chromium, chromium-driver
and python3-selenium), for tests/integ/t_dashboard.sh and bench/run's dashboard section.

  dashboard.py test  URL TOKEN OUTDIR   the checks of t_dashboard.sh; one line per check on
                                        stdout: "ok NAME" or "not ok NAME", then "# " lines
  dashboard.py bench URL TOKEN OUTDIR   page load and update times (JSON on stdout)

The test asks t_dashboard.sh to stop and start the broker (for the stale banner) through
files in OUTDIR: it creates req.stop and waits for ack.stop, then req.start and ack.start.
Every wait polls a condition with a deadline (WebDriverWait); none always runs to its end.
"""
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# Generous: the test also runs under ASan+UBSan, three scripts at a time.
DEADLINE = float(os.environ.get("DASH_DEADLINE", "20"))


def browser(outdir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    # Without the background-networking flags Chromium dials out at start, which this
    # machine's closed network refuses (and which a test has no business doing).
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1280,800",
              "--user-data-dir=" + os.path.join(outdir, "chromium-profile")):
        opts.add_argument(a)
    svc = Service("/usr/bin/chromedriver", log_output=os.path.join(outdir, "chromedriver.log")) \
        if "log_output" in Service.__init__.__code__.co_varnames else \
        Service("/usr/bin/chromedriver", log_path=os.path.join(outdir, "chromedriver.log"))
    d = webdriver.Chrome(service=svc, options=opts)
    d.set_page_load_timeout(DEADLINE * 2)
    return d


def viewport(d, w, h, mobile=False):
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": mobile})


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def get(self, path, token=None):
        req = urllib.request.Request(self.url + path)
        tok = self.token if token is None else token
        if tok:
            req.add_header("Authorization", "Bearer " + tok)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(), method="POST")
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self.get("/v1/stats?max=0")

    def queue(self, name):
        return [q for q in self.stats()["queues"] if q["name"] == name][0]

    def dead_total(self, group=None):
        return self.get("/v1/dead?max=1" + ("&group=" + group if group else ""))["total"]


def png_nonblank(path):
    """(ok, why): the PNG at path decodes and is not one colour."""
    data = open(path, "rb").read()
    if len(data) < 2000 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return False, "%d bytes, not a PNG of any size" % len(data)
    pos, idat, w, h, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, _, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp = {2: 3, 6: 4}.get(ctype, 1)
    stride = 1 + w * bpp
    # Filter bytes aside, a blank render of one colour has at most a few distinct rows.
    rows = set(raw[i * stride + 1:(i + 1) * stride] for i in range(0, h, 8))
    if len(rows) < 6:
        return False, "%dx%d, only %d distinct rows: blank" % (w, h, len(rows))
    return True, "%dx%d, %d bytes, %d distinct sampled rows" % (w, h, len(data), len(rows))


class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, name, why=""):
        print(("ok " if cond else "not ok ") + name, flush=True)
        if not cond:
            self.failed += 1
            for line in str(why).splitlines():
                print("# " + line, flush=True)
        return cond

    def wait(self, d, fn, name, why="", secs=None):
        def safe(_):
            # The app redraws by replacing elements: one read between two redraws may find
            # nothing (None) or a stale element; the next poll reads again.
            try:
                return fn()
            except (TypeError, KeyError, IndexError, WebDriverException):
                return False
        try:
            WebDriverWait(d, secs or DEADLINE, poll_frequency=0.1).until(safe)
            return self.ok(True, name)
        except TimeoutException:
            return self.ok(False, name, why() if callable(why) else why)


def text(d, css):
    try:
        return d.find_element(By.CSS_SELECTOR, css).text
    except WebDriverException:
        return None


def num(s):
    """The dashboard's number formatting undone (12, 1.5k, 2.0M); None for '—' or nothing."""
    if s is None or s in ("", "—"):
        return None
    mult = {"k": 1e3, "M": 1e6}.get(s[-1], 1)
    try:
        return float(s[:-1] if mult != 1 else s) * mult
    except ValueError:
        return None


def wait_request(outdir, what):
    open(os.path.join(outdir, "req." + what), "w").close()
    ack = os.path.join(outdir, "ack." + what)
    end = time.time() + 60
    while not os.path.exists(ack) and time.time() < end:
        time.sleep(0.05)
    return os.path.exists(ack)


def retry(fn):
    """fn() until it does not meet an element the app has just redrawn (stale), or DEADLINE."""
    end = time.time() + DEADLINE
    while True:
        try:
            return fn()
        except (StaleElementReferenceException, NoSuchElementException):
            if time.time() > end:
                raise
            time.sleep(0.05)


def click(d, css):
    retry(lambda: d.find_element(By.CSS_SELECTOR, css).click())


def type_into(d, css, keys, clear=False):
    def go():
        e = d.find_element(By.CSS_SELECTOR, css)
        if clear:
            e.clear()
        e.send_keys(keys)
    retry(go)


# The groups table fits its panel (which would scroll sideways), and the page its viewport.
TABLE_FITS = ("var p = document.getElementById('g-table').parentElement;"
              "return p.scrollWidth <= p.clientWidth + 1 &&"
              " document.documentElement.scrollWidth <= window.innerWidth + 1;")


def test(url, token, outdir):
    api, c = Api(url, token), Checks()
    d = browser(outdir)
    try:
        run_test(d, api, c, url, token, outdir)
    except Exception as e:  # a step that could not run: one failed check, with the reason
        c.ok(False, "the browser steps ran to their end", "%s: %s" % (type(e).__name__, e))
    finally:
        d.quit()
    return 1 if c.failed else 0


def login(d, c, url, token):
    d.get(url + "/")
    c.wait(d, lambda: d.find_element(By.ID, "login").is_displayed(),
           "with a token set, / shows the login form")
    d.find_element(By.ID, "token").send_keys("not-the-token")
    click(d, "#login button")
    c.wait(d, lambda: "Wrong token" in (text(d, "#login-err") or ""),
           "a wrong token is refused by the form", lambda: text(d, "#login-err"))
    c.ok(d.execute_script("return sessionStorage.getItem('sluice.token')") is None,
         "a wrong token is not kept")
    d.find_element(By.ID, "token").send_keys(token)
    click(d, "#login button")
    c.wait(d, lambda: text(d, "[data-k=jobs]") not in (None, ""),
           "the right token opens the dashboard (overview rendered)")


def run_test(d, api, c, url, token, outdir):
    login(d, c, url, token)
    # Faster updates for the test; also checks the interval selector.
    d.execute_script("var s=document.getElementById('interval'); s.value='1000';"
                     "s.dispatchEvent(new Event('change'));")

    # --- overview: right numbers, and they change while jobs flow
    # More jobs now, whatever became of the flood while the browser started (slow under the
    # sanitizers): the numbers must move while these flow.
    c.wait(d, lambda: text(d, "[data-k=done]") not in (None, ""), "overview: 'done' is shown")
    first = text(d, "[data-k=done]")
    api.post("/v1/groups/carol/jobs", {"payloads": ["z"] * 300})
    c.wait(d, lambda: text(d, "[data-k=done]") != first,
           "overview: 'done' changes while jobs flow", lambda: "stayed " + str(first))
    st = api.stats()
    c.wait(d, lambda: text(d, "[data-k=leader]") == (st["leader"] or {}).get("name", "none"),
           "overview: the router leader is /v1/stats' leader",
           lambda: "%r vs %r" % (text(d, "[data-k=leader]"), st["leader"]))
    c.wait(d, lambda: text(d, "[data-k=journal]") == st["broker"]["journal"],
           "overview: the journal state is /v1/stats'")
    c.wait(d, lambda: num(text(d, "[data-k=queues]")) == len(api.stats()["queues"]),
           "overview: the queue count")

    def same(css, f):
        v = f(api.stats())
        return num(text(d, css)) == v
    c.wait(d, lambda: same("[data-k=jobs]", lambda s: s["broker"]["jobs"]),
           "overview: jobs held equals /v1/stats' once the flood has drained",
           lambda: "%s vs %s" % (text(d, "[data-k=jobs]"), api.stats()["broker"]["jobs"]), 40)
    c.wait(d, lambda: same("[data-k=done]", lambda s: s["broker"]["done"]),
           "overview: done equals /v1/stats'")
    c.wait(d, lambda: d.execute_script(
        "var c=document.getElementById('ov-chart'); if(!c) return false;"
        "var x=c.getContext('2d').getImageData(0,0,c.width,c.height).data;"
        "for(var i=3;i<x.length;i+=4){if(x[i]>0)return true;} return false;"),
        "overview: the 10-minute chart is drawn")
    wk = api.stats()["workers"]
    busy = len([w for w in wk if w["state"] == "busy"])
    c.wait(d, lambda: num(text(d, "[data-k=workers_busy]")) + num(text(d, "[data-k=workers_idle]"))
           == len(api.stats()["workers"]), "overview: busy + idle workers are /v1/stats' workers",
           lambda: "%s + %s vs %d (busy %d)" % (text(d, "[data-k=workers_busy]"),
                                                text(d, "[data-k=workers_idle]"), len(wk), busy))

    # --- groups: paged by the broker, sortable, filterable, a page per group
    d.get(url + "/#groups")
    total = api.get("/v1/groups?max=1")["total"]
    c.wait(d, lambda: d.find_element(By.ID, "g-info").get_attribute("data-total") == str(total),
           "groups: the table's total is /v1/groups' (%d)" % total)
    rows = lambda: [r.get_attribute("data-name") for r in
                    d.find_elements(By.CSS_SELECTOR, "#g-table tbody tr[data-name]")]
    c.wait(d, lambda: len(rows()) == total, "groups: one row per group", lambda: str(rows()))
    click(d, "#g-table th[data-sort=name]")
    c.wait(d, lambda: rows() == sorted(rows()) and len(rows()) == total,
           "groups: sorted by name on a click", lambda: str(rows()))
    click(d, "#g-table th[data-sort=name]")
    c.wait(d, lambda: rows() == sorted(rows(), reverse=True) and len(rows()) > 1,
           "groups: a second click reverses the order", lambda: str(rows()))
    gs = api.get("/v1/groups?sort=name&max=500")["groups"]
    bob = [g for g in gs if g["name"] == "bob"][0]
    c.wait(d, lambda: text(d, "#g-table tr[data-name=bob] [data-k=count]") == str(
        [g for g in api.get("/v1/groups?filter=bob")["groups"] if g["name"] == "bob"][0]["count"]),
        "groups: bob's backlog is /v1/groups'", lambda: str(bob))
    type_into(d, "#g-filter", "ali")
    c.wait(d, lambda: rows() == ["alice"], "groups: the filter leaves alice alone",
           lambda: str(rows()))
    click(d, "#g-table tr[data-name=alice]")
    c.wait(d, lambda: text(d, "#gp-cards [data-k=count]") is not None and
           "group/alice" in d.current_url, "groups: a click opens alice's page")

    # --- queues: pause, resume, weight by clicking
    d.get(url + "/#queues")
    c.wait(d, lambda: text(d, "tr[data-q=q1] [data-k=paused]") == "running",
           "queues: q1 is listed as running")
    click(d, "button[data-q=q1][data-act=pause]")
    c.wait(d, lambda: api.queue("q1")["paused"] is True, "queues: Pause pauses q1 in the broker")
    c.wait(d, lambda: text(d, "tr[data-q=q1] [data-k=paused]") == "paused",
           "queues: the table shows q1 paused")
    click(d, "button[data-q=q1][data-act=resume]")
    c.wait(d, lambda: api.queue("q1")["paused"] is False, "queues: Resume resumes q1")
    type_into(d, "tr[data-q=q1] input[name=weight]", "7", clear=True)
    click(d, "button[data-q=q1][data-act=save]")
    c.wait(d, lambda: api.queue("q1")["weight"] == 7, "queues: Save sets q1's weight to 7",
           lambda: str(api.queue("q1")))

    # --- workers
    d.get(url + "/#workers")
    wk = api.stats()["workers"]
    c.wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#w-table tr[data-w]")) ==
           len(api.stats()["workers"]), "workers: one row per worker (%d)" % len(wk))
    pids = sorted(str(w["pid"]) if w["pid"] else "—" for w in wk)
    c.wait(d, lambda: sorted(e.text for e in d.find_elements(
        By.CSS_SELECTOR, "#w-table tr[data-w] td:nth-child(2)")) == pids,
        "workers: their pids are /v1/stats'", str(pids))
    pool = api.get("/v1/pool")
    c.wait(d, lambda: text(d, "#p-cards [data-k=reachable]") == "yes" and
           text(d, "#p-cards [data-k=wanted]") == str(pool["n"]),
           "workers: the worker-pool card shows the pool reachable, wanting %d" % pool["n"],
           lambda: text(d, "#p-cards"))
    c.wait(d, lambda: text(d, "#p-cards [data-k=running]") == str(
        sum(1 for w in api.get("/v1/pool")["workers"] if w["pid"] > 0)),
        "workers: and its running workers", lambda: text(d, "#p-cards"))

    # --- router
    d.get(url + "/#router")
    c.wait(d, lambda: text(d, "#r-cards [data-k=leader]") == (api.stats()["leader"] or {}).get("name"),
           "router: the leader is /v1/stats'")
    c.wait(d, lambda: "live" in (text(d, "#r-live") or ""), "router: the event stream is live")
    req = urllib.request.Request(api.url + "/v1/routes/alice", b'{"queue":"q1"}', method="PUT")
    req.add_header("Authorization", "Bearer " + token)
    urllib.request.urlopen(req, timeout=10).read()
    c.wait(d, lambda: "route.set" in (text(d, "#r-events") or "") and
           "alice" in (text(d, "#r-events") or ""),
           "router: a route change shows live, from /v1/events", lambda: text(d, "#r-events"))

    # --- dead jobs: retry one, purge a selection, purge all of a group
    d.get(url + "/#dead")
    n0 = api.dead_total()
    c.wait(d, lambda: d.find_element(By.ID, "d-info").get_attribute("data-total") == str(n0)
           and n0 > 0, "dead: the count is /v1/dead's (%d)" % n0)
    ids = retry(lambda: [e.get_attribute("data-id") for e in
                         d.find_elements(By.CSS_SELECTOR, "#d-table tr[data-id]")])
    click(d, "button[data-act=retry][data-id='%s']" % ids[0])
    c.wait(d, lambda: api.dead_total() == n0 - 1, "dead: Retry of one job retries it in the broker")
    c.wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#d-table tr[data-id]")) == n0 - 1,
           "dead: the list loses it")
    for i in ids[1:3]:
        click(d, "input[type=checkbox][data-id='%s']" % i)
    click(d, "button[data-act=purge-sel]")
    c.wait(d, lambda: api.dead_total() == n0 - 3, "dead: Purge selected purges two jobs",
           lambda: str(api.dead_total()))
    type_into(d, "#d-group", "dlq")
    c.wait(d, lambda: d.find_element(By.ID, "d-info").get_attribute("data-group") == "dlq" and
           d.find_element(By.ID, "d-info").get_attribute("data-total") == str(n0 - 3),
           "dead: filtered by group dlq")
    click(d, "button[data-act=purge-group]")
    click(d, "button[data-act=purge-group]")
    c.wait(d, lambda: api.dead_total("dlq") == 0, "dead: Purge all of the group empties dlq")

    # --- the token never in the page
    d.get(url + "/#overview")
    d.refresh()
    c.wait(d, lambda: text(d, "[data-k=jobs]") not in (None, ""), "a reload keeps the session")
    dom = d.execute_script("return document.documentElement.outerHTML")
    c.ok(token not in d.page_source and token not in dom and token not in d.current_url,
         "the page (source, DOM, URL) never holds the token")

    # --- screenshots, 1280x800 and 390x844
    for w_, h_, name in ((1280, 800, "dashboard-1280x800.png"), (390, 844, "dashboard-390x844.png")):
        viewport(d, w_, h_, w_ < 500)
        c.wait(d, lambda: d.execute_script("return document.readyState") == "complete", "resized")
        d.execute_script("window.dispatchEvent(new Event('resize'))")
        path = os.path.join(outdir, name)
        d.save_screenshot(path)
        good, why = png_nonblank(path)
        c.ok(good, "screenshot %s is not blank (%s)" % (name, why), why)
        if w_ < 500:
            wide = d.execute_script("return document.documentElement.scrollWidth")
            c.ok(wide <= 390 + 2, "at 390 px wide the overview needs no sideways scroll", str(wide))
            d.get(url + "/#groups")
            c.wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#g-table tbody tr[data-name]"))
                   > 0 and d.execute_script(TABLE_FITS),
                   "at 390 px wide the groups table (with the oldest wait) needs no sideways scroll",
                   lambda: str(d.execute_script("var p = document.getElementById('g-table')"
                                                ".parentElement; return [p.scrollWidth, "
                                                "p.clientWidth]")))
            d.save_screenshot(os.path.join(outdir, "dashboard-groups-390x844.png"))
            d.get(url + "/#overview")
    viewport(d, 1280, 800)

    # --- the stale banner
    banner = lambda: d.find_element(By.ID, "banner").get_attribute("class") == "show"
    c.ok(not banner(), "no banner while the broker answers")
    c.ok(wait_request(outdir, "stop"), "the broker was stopped")
    c.wait(d, banner, "the banner shows once the broker is stopped")
    c.ok("unreachable" in (text(d, "#banner") or ""), "it says the broker is unreachable",
         text(d, "#banner"))
    c.ok(wait_request(outdir, "start"), "the broker was started again")
    c.wait(d, lambda: not banner(), "the banner goes once it is back", secs=DEADLINE * 2)


def bench(url, token, outdir):
    """Median page load (navigation start to the groups table rendered) and update (poll start
    to DOM updated) in ms, and bytes per update, at 1280x800 on #groups."""
    d = browser(outdir)
    out = {"loads_ms": [], "updates_ms": [], "fetches_ms": [], "bytes_per_update": []}
    try:
        d.get(url + "/")
        if token:
            d.execute_script("sessionStorage.setItem('sluice.token', arguments[0])", token)
        d.get(url + "/#groups")
        for i in range(5):
            if i > 0:
                d.refresh()
            WebDriverWait(d, 60, 0.05).until(
                lambda _: d.execute_script("return window.sluicePerf && window.sluicePerf.load"))
            out["loads_ms"].append(d.execute_script("return window.sluicePerf.load"))
        WebDriverWait(d, 60, 0.2).until(
            lambda _: d.execute_script("return window.sluicePerf.updates.length") >= 6)
        p = d.execute_script("return window.sluicePerf")
        out["updates_ms"] = p["updates"][1:]
        out["fetches_ms"] = p["fetches"][1:]
        out["bytes_per_update"] = p["bytes"][1:]
        d.save_screenshot(os.path.join(outdir, "dashboard-bench.png"))
    finally:
        d.quit()
    med = lambda a: sorted(a)[len(a) // 2] if a else None
    out["load_median_ms"] = med(out["loads_ms"])
    out["update_median_ms"] = med(out["updates_ms"])
    out["fetch_median_ms"] = med(out.get("fetches_ms", []))
    out["bytes_median"] = med(out["bytes_per_update"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("test", "bench"):
        sys.exit(__doc__)
    sys.exit({"test": test, "bench": bench}[sys.argv[1]](*sys.argv[2:]))
