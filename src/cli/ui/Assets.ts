/**
 * The page, script and styles of `chronicle ui`, as strings compiled into the
 * package (no copy step, no CDN). The script renders every value from the
 * store with text nodes, never as HTML.
 *
 * @since 0.2.0
 */

/**
 * The single page: a header with the store and the navigation, and the view.
 *
 * @since 0.2.0
 * @category assets
 */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chronicle ui</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="#/">chronicle</a>
  <nav>
    <a href="#/" data-nav="streams">Streams</a>
    <a href="#/live" data-nav="live">Live log</a>
    <a href="#/projections" data-nav="projections">Projections</a>
  </nav>
  <span class="store" data-testid="store-label"></span>
  <span class="badge" title="The console has no route that writes">read-only</span>
</header>
<div id="banner"></div>
<main id="main"><p class="muted">Loading…</p></main>
<noscript>The console needs JavaScript.</noscript>
</body>
</html>
`

/**
 * The stylesheet.
 *
 * @since 0.2.0
 * @category assets
 */
export const styles = `
:root { --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --accent: #2457c5; --bad: #b42318; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 18px; padding: 10px 20px; background: #141a24; color: #fff; }
header a { color: #c9d4e8; text-decoration: none; }
header a.active, header a:hover { color: #fff; }
.brand { font-weight: 700; color: #fff !important; letter-spacing: .02em; }
nav { display: flex; gap: 14px; }
.store { margin-left: auto; font-family: ui-monospace, monospace; font-size: 12px; color: #c9d4e8; }
.badge { font-size: 11px; padding: 2px 8px; border: 1px solid #5a6b8c; border-radius: 10px; color: #c9d4e8; }
main { padding: 18px 20px; max-width: 1100px; }
h2 { margin: 0 0 6px; font-size: 18px; word-break: break-all; }
a { color: var(--accent); }
.muted { color: var(--muted); }
.error { border: 1px solid #f3b8b2; background: #fef3f2; color: var(--bad); padding: 10px 14px; border-radius: 6px; margin: 10px 0; white-space: pre-wrap; word-break: break-word; }
#banner .error { margin: 10px 20px 0; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, monospace; word-break: break-all; }
input[type=search] { width: 320px; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
.toolbar { display: flex; gap: 14px; align-items: center; margin: 10px 0; }
button { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
.event { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 8px 0; }
.event .head { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.event .type { font-weight: 600; }
.event .meta { font-size: 12px; color: var(--muted); font-family: ui-monospace, monospace; }
pre { margin: 6px 0 0; padding: 8px 10px; background: #f2f4f7; border-radius: 4px; overflow-x: auto; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
details summary { cursor: pointer; font-size: 12px; color: var(--muted); margin-top: 6px; }
.status { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #eef2ff; color: var(--accent); }
.fresh { animation: flash 1.5s ease-out; }
@keyframes flash { from { background: #fff7d6; } to { background: #fff; } }
input[type=range] { width: 320px; }
`

/**
 * The script: a hash router over the JSON API and the live log's event source.
 *
 * @since 0.2.0
 * @category assets
 */
export const script = String.raw`"use strict"
const main = document.getElementById("main")
const banner = document.getElementById("banner")
let info = { decider: null }
let leave = () => {}

const el = (tag, attributes, ...children) => {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null) continue
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value)
    else if (name === "class") node.className = value
    else node.setAttribute(name, String(value))
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue
    node.append(typeof child === "object" ? child : String(child))
  }
  return node
}

const api = async (path) => {
  const response = await fetch(path, { headers: { accept: "application/json" } })
  let body
  try { body = await response.json() } catch { body = { error: "the server answered " + response.status + " " + response.statusText } }
  if (!response.ok) throw new Error(body.error || ("the server answered " + response.status))
  return body
}

const problem = (error) => el("div", { class: "error", "data-testid": "error", role: "alert" }, error instanceof Error ? error.message : String(error))
const show = (...nodes) => { main.replaceChildren(...nodes) }
const pretty = (value) => JSON.stringify(value, null, 2)
const count = (n) => Number(n).toLocaleString("en-US")
const streamHref = (id) => "#/stream/" + encodeURIComponent(id)
const replayHref = (id, version) => "#/replay/" + encodeURIComponent(id) + "/" + version

const eventCard = (event, options) => {
  const withStream = options && options.withStream
  const card = el("div", { class: "event", "data-testid": options && options.testid ? options.testid : "event", "data-version": event.streamVersion, "data-position": event.globalPosition },
    el("div", { class: "head" },
      withStream ? el("a", { href: streamHref(event.streamId), class: "id" }, event.streamId) : null,
      el("span", { class: "version" }, "#" + event.streamVersion),
      el("span", { class: "type", "data-testid": "event-type" }, event.type),
      info.decider && !withStream ? el("a", { href: replayHref(event.streamId, event.streamVersion), "data-testid": "state-link" }, "state after") : null),
    el("div", { class: "meta" }, "position " + event.globalPosition + " · " + event.recordedAt + " · " + event.eventId +
      (event.tags && event.tags.length > 0 ? " · tags " + event.tags.join(", ") : "")),
    el("pre", { "data-testid": "event-data" }, pretty(event.data)),
    el("details", {}, el("summary", {}, "metadata"), el("pre", { "data-testid": "event-metadata" }, pretty(event.metadata))))
  return card
}

const streamsPage = async () => {
  const search = el("input", { type: "search", placeholder: "Search stream ids…", "data-testid": "search", "aria-label": "Search streams" })
  const counts = el("span", { class: "muted", "data-testid": "stream-counts" })
  const body = el("tbody")
  const more = el("button", { "data-testid": "more-streams", hidden: "" }, "More streams")
  const slot = el("div")
  let cursor = null
  let generation = 0
  const load = async (append) => {
    const mine = ++generation
    const query = "/api/streams?search=" + encodeURIComponent(search.value) + (append && cursor ? "&cursor=" + encodeURIComponent(cursor) : "")
    try {
      const page = await api(query)
      if (mine !== generation) return
      slot.replaceChildren()
      counts.textContent = count(page.matching) + (search.value.trim() === "" ? "" : " of " + count(page.total)) + " streams · " + count(page.events) + " events in the store"
      const rows = page.streams.map((s) => el("tr", { "data-testid": "stream-row" },
        el("td", { class: "id" }, el("a", { href: streamHref(s.streamId) }, s.streamId)),
        el("td", { class: "num" }, s.version), el("td", { class: "num" }, count(s.events)),
        el("td", { class: "num" }, count(s.bytes)), el("td", {}, s.lastRecordedAt)))
      if (append) body.append(...rows)
      else body.replaceChildren(...rows)
      cursor = page.nextCursor
      more.hidden = cursor === null
      if (page.streams.length === 0 && !append) slot.append(el("p", { class: "muted", "data-testid": "no-streams" }, search.value.trim() === "" ? "No streams yet." : "No stream id contains that."))
    } catch (error) {
      slot.replaceChildren(problem(error))
    }
  }
  let timer
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(false), 150) })
  more.addEventListener("click", () => load(true))
  show(el("div", { class: "toolbar" }, search, counts), slot,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Stream"), el("th", { class: "num" }, "Version"), el("th", { class: "num" }, "Events"), el("th", { class: "num" }, "Bytes"), el("th", {}, "Last event"))), body),
    el("div", { class: "toolbar" }, more))
  await load(false)
}

const streamPage = async (id) => {
  const list = el("div", { "data-testid": "events" })
  const older = el("button", { "data-testid": "older", hidden: "" }, "Older events")
  const heading = el("p", { class: "muted" })
  let before = null
  const load = async () => {
    const page = await api("/api/events?id=" + encodeURIComponent(id) + "&limit=10" + (before === null ? "" : "&before=" + before))
    heading.textContent = "version " + page.version + " · newest first"
    list.append(...page.events.map((event) => eventCard(event)))
    before = page.nextBefore
    older.hidden = before === null
  }
  older.addEventListener("click", () => load().catch((error) => list.append(problem(error))))
  show(el("h2", { "data-testid": "stream-title" }, id), heading, list, older)
  try { await load() } catch (error) { show(el("h2", {}, id), problem(error), el("p", {}, el("a", { href: "#/" }, "Back to the streams"))) }
}

const replayPage = async (id, at) => {
  try {
    const step = await api("/api/replay?id=" + encodeURIComponent(id) + "&at=" + at)
    const slider = el("input", { type: "range", min: 1, max: step.of, value: step.version, "data-testid": "replay-slider", "aria-label": "Version" })
    slider.addEventListener("change", () => { location.hash = replayHref(id, slider.value) })
    show(el("h2", {}, el("a", { href: streamHref(id) }, id)),
      el("p", { class: "muted", "data-testid": "replay-title" }, "State after version " + step.version + " of " + step.of + " through " + step.decider + " (" + step.codec + ")"),
      el("div", { class: "toolbar" },
        step.version > 1 ? el("a", { href: replayHref(id, step.version - 1), "data-testid": "replay-previous" }, "← previous") : el("span", { class: "muted" }, "← previous"),
        slider,
        step.version < step.of ? el("a", { href: replayHref(id, step.version + 1), "data-testid": "replay-next" }, "next →") : el("span", { class: "muted" }, "next →")),
      el("pre", { "data-testid": "state" }, pretty(step.state)),
      step.event ? el("div", {}, el("p", { class: "muted" }, "The event:"), eventCard(step.event)) : null)
  } catch (error) {
    show(el("h2", {}, id), problem(error))
  }
}

const livePage = async () => {
  const status = el("span", { class: "status", "data-testid": "live-status" }, "connecting…")
  const list = el("div", { "data-testid": "live-events" })
  show(el("div", { class: "toolbar" }, el("h2", {}, "Global log"), status), el("p", { class: "muted" }, "The last events, newest first; new ones appear as they are appended."), list)
  let source
  try {
    const last = await api("/api/log?limit=20")
    list.append(...last.events.map((event) => eventCard(event, { withStream: true, testid: "live-event" })))
    source = new EventSource("/api/tail?after=" + encodeURIComponent(last.head))
  } catch (error) {
    status.textContent = "stopped"
    list.prepend(problem(error))
    return
  }
  source.addEventListener("open", () => { status.textContent = "live" })
  source.addEventListener("error", () => { status.textContent = "reconnecting…" })
  source.addEventListener("append", (message) => {
    const card = eventCard(JSON.parse(message.data), { withStream: true, testid: "live-event" })
    card.classList.add("fresh")
    list.prepend(card)
  })
  source.addEventListener("failure", (message) => { list.prepend(problem(JSON.parse(message.data).error)) })
  leave = () => source.close()
}

const projectionsPage = async () => {
  try {
    const page = await api("/api/projections")
    const rows = page.projections.map((p) => el("tr", { "data-testid": "projection-row" },
      el("td", { class: "id" }, p.name), el("td", { class: "num" }, p.position === null ? "none" : p.position), el("td", { class: "num", "data-testid": "lag" }, count(p.lag) + (p.lagAtLeast ? "+" : ""))))
    show(el("h2", {}, "Projections"),
      el("p", { class: "muted" }, "Each reader of the global log (projection, process manager, forwarder) and its checkpoint; lag is how many events of the log come after it (counted up to 10,000)."),
      rows.length === 0
        ? el("p", { class: "muted", "data-testid": "no-projections" }, "No checkpoints in this store yet.")
        : el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", { class: "num" }, "Checkpoint"), el("th", { class: "num" }, "Lag"))), el("tbody", {}, ...rows)))
  } catch (error) {
    show(el("h2", {}, "Projections"), problem(error))
  }
}

const route = () => {
  leave()
  leave = () => {}
  const hash = location.hash.replace(/^#\/?/, "")
  const parts = hash.split("/")
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.nav === (parts[0] === "" || parts[0] === "stream" || parts[0] === "replay" ? "streams" : parts[0]))
  main.replaceChildren(el("p", { class: "muted" }, "Loading…"))
  try {
    if (parts[0] === "" || parts[0] === "streams") return streamsPage()
    if (parts[0] === "stream" && parts.length === 2) return streamPage(decodeURIComponent(parts[1]))
    if (parts[0] === "replay" && parts.length === 3) return replayPage(decodeURIComponent(parts[1]), parts[2])
    if (parts[0] === "live") return livePage()
    if (parts[0] === "projections") return projectionsPage()
  } catch (error) {
    return show(problem(error))
  }
  show(problem(new Error("no such page: #" + hash)), el("p", {}, el("a", { href: "#/" }, "Back to the streams")))
}

const start = async () => {
  try {
    info = await api("/api/info")
    document.querySelector("[data-testid=store-label]").textContent = info.store
    if (info.error) banner.replaceChildren(el("div", { class: "error", "data-testid": "store-error", role: "alert" }, "Cannot open the store: " + info.error))
  } catch (error) {
    banner.replaceChildren(problem(error))
  }
  window.addEventListener("hashchange", route)
  route()
}
start()
`
