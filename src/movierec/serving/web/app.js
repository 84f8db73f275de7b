// movierec web page: plain JS against the movierec serve HTTP API (see /docs).
"use strict";

const PAGE = 12;
const STORE = "movierec.";
const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  models: [],
  model: localStorage.getItem(STORE + "model") || "",
  // only a model the visitor picked is sent; otherwise the server (and its experiments) choose
  picked: Boolean(localStorage.getItem(STORE + "model")),
  genres: new Set(),
  yearMin: null,
  yearMax: null,
  sid: localStorage.getItem(STORE + "session") || null,
  ratings: new Map(), // movieId -> {movie, rating}, newest last
  favorite: readJSON(STORE + "favorite"),
  user: null, // a known MovieLens user id, or null for the visitor
  history: [],
  k: PAGE,
  shown: [],
  recsSeq: 0,
};

function readJSON(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

// -- API ---------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function detailText(body, status) {
  const d = body && body.detail;
  if (typeof d === "string") return d;
  if (Array.isArray(d) && d.length) {
    return d
      .map((e) => {
        const where = (e.loc || []).filter((p) => p !== "body" && p !== "query").join(".");
        return where ? `${where}: ${e.msg}` : e.msg;
      })
      .join("; ");
  }
  return `The server answered ${status}; please try again.`;
}

async function api(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Can't reach the movierec server. Check that it is running.");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, detailText(data, res.status));
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(key, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// -- small helpers -----------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (key === "class") node.className = v;
    else if (key === "text") node.textContent = v;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), v);
    else node.setAttribute(key, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// MovieLens writes "Usual Suspects, The"; show "The Usual Suspects".
function niceTitle(title) {
  const m = /^(.*), (The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El)$/.exec(title || "");
  if (!m) return title || "Untitled";
  return m[2].endsWith("'") ? m[2] + m[1] : `${m[2]} ${m[1]}`;
}

function posterStyle(movie) {
  const h = (Number(movie.movieId) * 47) % 360;
  return `background: linear-gradient(160deg, hsl(${h} 55% 52%), hsl(${(h + 40) % 360} 60% 34%))`;
}

function initial(movie) {
  const t = niceTitle(movie.title).replace(/^(The|A|An) /, "");
  const ch = t.match(/[A-Za-z0-9]/);
  return ch ? ch[0].toUpperCase() : "•";
}

function listText(names) {
  if (names.length <= 1) return names.join("");
  return names.slice(0, -1).join(", ") + " and " + names[names.length - 1];
}

function starsText(v) {
  return v ? `${v} star${v === 1 ? "" : "s"}` : "Not rated";
}

let toastTimer = null;
function toast(message, isError = false) {
  const t = $("#toast");
  t.textContent = message;
  t.classList.toggle("error", isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), isError ? 6000 : 2600);
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// -- stars: one slider per movie, 0.5..5 in half steps ----------------------------------------
function makeStars(movie, value, { readonly = false, small = false, label = true } = {}) {
  const name = niceTitle(movie.title);
  const stars = el("div", {
    class: "stars" + (readonly ? " readonly" : "") + (small ? " small" : ""),
    role: readonly ? "img" : "slider",
    tabindex: readonly ? null : "0",
    "aria-label": readonly ? `Rated ${starsText(value)}` : `Your rating for ${name}`,
    "aria-valuemin": readonly ? null : "0.5",
    "aria-valuemax": readonly ? null : "5",
    "data-rate-for": movie.movieId,
  });
  const text = label ? el("span", { class: "stars-label" }) : null;
  const wrap = el("div", { class: "stars-wrap" }, stars, text);
  let current = value || 0;
  let pending = null;
  const show = (v, preview = false) => {
    stars.style.setProperty("--v", String(v));
    stars.classList.toggle("preview", preview);
    if (text) text.textContent = v ? v.toFixed(1) : readonly ? "" : "Rate";
  };
  const set = (v) => {
    current = v;
    show(v);
    if (!readonly) {
      if (v) stars.setAttribute("aria-valuenow", String(v));
      stars.setAttribute("aria-valuetext", starsText(v));
    }
  };
  set(current);
  wrap.setValue = set;
  if (readonly) return wrap;

  const at = (ev) => {
    const r = stars.getBoundingClientRect();
    const v = Math.ceil(((ev.clientX - r.left) / r.width) * 10) / 2;
    return Math.min(5, Math.max(0.5, v));
  };
  stars.addEventListener("pointermove", (ev) => show(at(ev), true));
  stars.addEventListener("pointerleave", () => show(current));
  stars.addEventListener("click", (ev) => {
    ev.stopPropagation();
    const v = at(ev);
    set(v);
    rate(movie, v);
  });
  const commit = debounce(() => {
    if (pending !== null) rate(movie, pending);
    pending = null;
  }, 700);
  stars.addEventListener("keydown", (ev) => {
    const steps = { ArrowRight: 0.5, ArrowUp: 0.5, ArrowLeft: -0.5, ArrowDown: -0.5 };
    let v = null;
    if (ev.key in steps) v = Math.min(5, Math.max(0.5, (current || 0) + steps[ev.key]));
    else if (ev.key === "Home") v = 0.5;
    else if (ev.key === "End") v = 5;
    else if (/^[1-5]$/.test(ev.key)) v = Number(ev.key);
    else if (ev.key === "Enter" && pending !== null) {
      ev.preventDefault();
      rate(movie, pending);
      pending = null;
      return;
    }
    if (v === null) return;
    ev.preventDefault();
    set(v);
    pending = v;
    commit();
  });
  return wrap;
}

function syncStars(movieId, value) {
  for (const s of document.querySelectorAll(`.stars[data-rate-for="${movieId}"]:not(.readonly)`)) {
    s.parentElement.setValue(value);
  }
}

// -- profile: the visitor's session or a known user --------------------------------------------
async function ensureSession() {
  if (state.sid) return state.sid;
  const data = await api("/sessions", { method: "POST" });
  state.sid = data.session_id;
  localStorage.setItem(STORE + "session", state.sid);
  return state.sid;
}

function dropSession() {
  state.sid = null;
  state.ratings.clear();
  localStorage.removeItem(STORE + "session");
}

async function rate(movie, value) {
  const name = niceTitle(movie.title);
  try {
    if (state.user !== null) {
      await api(`/users/${state.user}/ratings`, {
        method: "POST",
        body: { movieId: movie.movieId, rating: value },
      });
    } else {
      await ensureSession();
      try {
        await api(`/sessions/${state.sid}/ratings`, {
          method: "POST",
          body: { movieId: movie.movieId, rating: value },
        });
      } catch (err) {
        if (err.status !== 404 || !/session/i.test(err.message)) throw err;
        dropSession(); // the server no longer knows this session: start a new one
        await ensureSession();
        await api(`/sessions/${state.sid}/ratings`, {
          method: "POST",
          body: { movieId: movie.movieId, rating: value },
        });
      }
      state.ratings.delete(movie.movieId);
      state.ratings.set(movie.movieId, { movie, rating: value });
    }
  } catch (err) {
    toast(`Couldn't save your rating for ${name}: ${err.message}`, true);
    syncStars(movie.movieId, ratingOf(movie.movieId));
    return;
  }
  syncStars(movie.movieId, value);
  toast(`Rated ${name} ${value} ★ — updating your recommendations`);
  if (state.user !== null) await loadHistory();
  else renderProfile();
  await loadRecs();
}

function ratingOf(movieId) {
  if (state.user !== null) {
    const h = state.history.find((x) => x.movieId === movieId);
    return h ? h.rating : 0;
  }
  const r = state.ratings.get(movieId);
  return r ? r.rating : 0;
}

async function loadSessionRatings() {
  if (!state.sid) return;
  try {
    const data = await api(`/sessions/${state.sid}/ratings`);
    state.ratings.clear();
    for (const it of data.items) state.ratings.set(it.movieId, { movie: it, rating: it.rating });
  } catch (err) {
    if (err.status === 404) dropSession();
    else showAlert(err.message);
  }
}

async function loadHistory() {
  try {
    const data = await api(`/users/${state.user}/history${query({ limit: 50 })}`);
    state.history = data.items;
  } catch (err) {
    state.history = [];
    showAlert(err.message);
  }
  renderProfile();
}

function renderProfile() {
  const list = $("#rated-list");
  list.replaceChildren();
  const isUser = state.user !== null;
  $("#profile-title").textContent = isUser ? `User ${state.user}'s ratings` : "Your ratings";
  const rows = isUser
    ? state.history.map((h) => ({ movie: h, rating: h.rating, when: h.timestamp, source: h.source }))
    : [...state.ratings.values()].reverse();
  $("#profile-count").textContent = rows.length
    ? `${isUser && rows.length >= 50 ? "first " : ""}${rows.length}`
    : "";
  const hint = $("#profile-hint");
  if (isUser) {
    hint.textContent = rows.length
      ? "Ratings added here come first, then their MovieLens ratings, highest first."
      : `User ${state.user} has no ratings yet. Rate a movie to start their history.`;
  } else {
    hint.textContent = rows.length
      ? "Change a rating any time; recommendations follow."
      : "Rate a few movies you've seen and your recommendations adapt after every rating. " +
        "No sign-up: your ratings stay with this browser.";
  }
  for (const r of rows) {
    const meta = [r.movie.year, r.when ? new Date(r.when * 1000).toLocaleDateString() : null]
      .filter(Boolean)
      .join(" · ");
    list.append(
      el(
        "li",
        {},
        el("button", {
          type: "button",
          class: "r-title",
          text: niceTitle(r.movie.title),
          onclick: () => openMovie(r.movie.movieId),
        }),
        el(
          "div",
          { class: "r-row" },
          el("span", { class: "r-meta", text: meta }),
          makeStars(r.movie, r.rating, { small: true, readonly: isUser }),
        ),
      ),
    );
  }
  renderFavorite();
}

function renderFavorite() {
  const box = $("#favorite-box");
  box.replaceChildren();
  if (state.user !== null) {
    box.append(
      el("p", {
        class: "hint",
        text: "Favourite blending works on your own ratings; go back to them to use it.",
      }),
    );
    return;
  }
  const f = state.favorite;
  if (!f) {
    box.append(
      el("p", {
        class: "hint",
        text: "Tap ♥ on any movie and your recommendations blend in movies like it.",
      }),
    );
    return;
  }
  box.append(
    el(
      "div",
      { class: "fav" },
      el(
        "div",
        {},
        el("button", {
          type: "button",
          class: "fav-title",
          text: `♥ ${niceTitle(f.title)}`,
          onclick: () => openMovie(f.movieId),
        }),
        el("div", { class: "r-meta", text: f.year ? String(f.year) : "" }),
      ),
      el("button", {
        type: "button",
        class: "btn btn-ghost",
        text: "Remove",
        "aria-label": `Remove ${niceTitle(f.title)} as favourite`,
        onclick: () => setFavorite(null),
      }),
    ),
    el("p", { class: "hint", text: "Recommendations mix your taste with movies similar to it." }),
  );
}

async function setFavorite(movie) {
  state.favorite = movie
    ? { movieId: movie.movieId, title: movie.title, year: movie.year, genres: movie.genres }
    : null;
  if (movie) localStorage.setItem(STORE + "favorite", JSON.stringify(state.favorite));
  else localStorage.removeItem(STORE + "favorite");
  for (const b of document.querySelectorAll(".fav-btn, .dlg-fav")) syncFavButton(b);
  renderFavorite();
  if (movie) toast(`${niceTitle(movie.title)} is your favourite — blending it in`);
  await loadRecs();
}

function syncFavButton(btn) {
  const id = Number(btn.dataset.movieId);
  const on = !!state.favorite && state.favorite.movieId === id;
  btn.setAttribute("aria-pressed", String(on));
  if (btn.classList.contains("dlg-fav")) btn.textContent = on ? "♥ Favourite" : "♡ Make favourite";
}

// -- recommendations ---------------------------------------------------------------------------
function filterParams() {
  return {
    genres: [...state.genres].join(","),
    year_min: state.yearMin,
    year_max: state.yearMax,
  };
}

function hasFilters() {
  return state.genres.size > 0 || state.yearMin !== null || state.yearMax !== null;
}

function showAlert(message) {
  const a = $("#alert");
  a.textContent = message;
  a.hidden = !message;
}

async function loadRecs() {
  const seq = ++state.recsSeq;
  const list = $("#recs");
  list.setAttribute("aria-busy", "true");
  const params = { k: state.k, model: state.picked ? state.model : "", ...filterParams() };
  let path;
  if (state.user !== null) {
    path = `/users/${state.user}/recommendations${query(params)}`;
  } else if (state.sid) {
    const fav = state.favorite ? state.favorite.movieId : null;
    path = `/sessions/${state.sid}/recommendations${query({ ...params, favorite: fav })}`;
  } else {
    // No session before the first rating: an id no one has gets the popularity fallback;
    // the model is named so that this shared placeholder user never enters an experiment.
    path = `/users/0/recommendations${query({ ...params, model: state.model })}`;
  }
  let data;
  try {
    data = await api(path);
  } catch (err) {
    if (seq !== state.recsSeq) return;
    if (err.status === 404 && state.user === null && state.sid && /session/i.test(err.message)) {
      dropSession();
      renderProfile();
      return loadRecs();
    }
    list.setAttribute("aria-busy", "false");
    list.replaceChildren();
    showAlert(err.message);
    $("#recs-empty").hidden = true;
    $("#more").hidden = true;
    list.dataset.version = String(seq);
    return;
  }
  if (seq !== state.recsSeq) return;
  showAlert("");
  renderRecs(data);
  list.dataset.version = String(seq); // lets tests wait for a finished reload
}

function renderHeading(data) {
  const parts = [];
  let title;
  const modelName = data.model ? modelLabel(data.model) : "";
  if (state.user !== null) {
    title = `Recommended for user ${state.user}`;
    parts.push(
      data.fallback
        ? `User ${state.user} isn't in this model's training data, so these are popular movies`
        : "Based on their rating history",
    );
  } else if (state.ratings.size === 0 && !state.favorite) {
    title = "Popular right now";
    parts.push("Rate a few movies you've seen to get picks for you");
  } else {
    title = "Recommended for you";
    const n = state.ratings.size;
    const basis = [];
    if (n) basis.push(`your ${n} rating${n === 1 ? "" : "s"}`);
    if (state.favorite) basis.push(`your favourite, ${niceTitle(state.favorite.title)}`);
    parts.push(
      data.fallback
        ? "This model can't place new visitors yet, so these are popular movies"
        : `Based on ${listText(basis)}`,
    );
  }
  if (modelName && !data.fallback) parts.push(modelName);
  const f = [];
  if (state.genres.size) f.push([...state.genres].join(", "));
  if (state.yearMin !== null || state.yearMax !== null) {
    f.push(`${state.yearMin ?? "…"}–${state.yearMax ?? "…"}`);
  }
  if (f.length) parts.push(f.join(" · "));
  $("#recs-title").textContent = title;
  $("#recs-sub").textContent = parts.join(" · ");
}

function renderRecs(data) {
  const list = $("#recs");
  renderHeading(data);
  const before = new Set(state.shown);
  const cards = data.items.map((m) => card(m, !before.has(m.movieId) && before.size > 0));
  list.replaceChildren(...cards);
  list.setAttribute("aria-busy", "false");
  state.shown = data.items.map((m) => m.movieId);
  const empty = $("#recs-empty");
  empty.hidden = data.items.length > 0;
  if (!data.items.length) {
    empty.replaceChildren(
      ...(hasFilters()
        ? [
            el("strong", { text: "No movies match these filters" }),
            el("span", { text: "Try another genre or a wider year range. " }),
            el("button", {
              type: "button",
              class: "link-btn",
              text: "Clear filters",
              onclick: clearFilters,
            }),
          ]
        : [
            el("strong", { text: "Nothing left to recommend" }),
            el("span", { text: "You've rated everything this model knows. Impressive." }),
          ]),
    );
  }
  $("#more").hidden = data.items.length < state.k || state.k >= 96;
}

function card(m, isNew) {
  const node = $("#card-tpl").content.firstElementChild.cloneNode(true);
  node.dataset.movieId = m.movieId;
  if (isNew) node.classList.add("is-new");
  const poster = $(".poster", node);
  poster.setAttribute("style", posterStyle(m));
  $(".poster-letter", poster).textContent = initial(m);
  const title = $(".title-btn", node);
  title.textContent = niceTitle(m.title);
  title.setAttribute("aria-label", `${niceTitle(m.title)}: details and similar movies`);
  title.addEventListener("click", () => openMovie(m.movieId));
  $(".year", node).textContent = m.year ? String(m.year) : "Year unknown";
  const chips = $(".genre-list", node);
  chips.setAttribute("aria-label", "Genres");
  for (const g of m.genres) chips.append(el("li", { text: g }));
  const because = $(".because", node);
  if (m.because && m.because.length) {
    const who = state.user !== null ? "they" : "you";
    because.append(`Because ${who} rated `);
    m.because.slice(0, 2).forEach((b, i, arr) => {
      if (i) because.append(i === arr.length - 1 ? " and " : ", ");
      because.append(
        el("a", {
          href: `#movie-${b.movieId}`,
          text: niceTitle(b.title),
          onclick: (ev) => {
            ev.preventDefault();
            openMovie(b.movieId);
          },
        }),
      );
    });
  }
  $(".stars-slot", node).replaceWith(makeStars(m, ratingOf(m.movieId)));
  const fav = $(".fav-btn", node);
  fav.dataset.movieId = m.movieId;
  fav.setAttribute("aria-label", `Make ${niceTitle(m.title)} your favourite`);
  fav.hidden = state.user !== null;
  syncFavButton(fav);
  fav.addEventListener("click", () =>
    setFavorite(state.favorite && state.favorite.movieId === m.movieId ? null : m),
  );
  return node;
}

// -- movie details -----------------------------------------------------------------------------
const dialog = () => $("#movie-dialog");

async function openMovie(movieId) {
  const body = $("#dlg-body");
  body.replaceChildren(el("p", { class: "loading", text: "Loading…" }));
  if (!dialog().open) dialog().showModal();
  let m;
  try {
    m = await api(`/movies/${movieId}`);
  } catch (err) {
    body.replaceChildren(el("div", { class: "alert", role: "alert", text: err.message }));
    return;
  }
  const name = niceTitle(m.title);
  const facts = [m.year, m.n_ratings ? `${m.n_ratings.toLocaleString()} ratings` : "No ratings yet"];
  if (m.mean_rating !== null && m.mean_rating !== undefined) {
    facts.push(`average ${m.mean_rating.toFixed(1)} ★`);
  }
  const links = el("div", { class: "dlg-links" });
  if (m.links && m.links.imdb) {
    links.append(el("a", { href: m.links.imdb, target: "_blank", rel: "noopener", text: "IMDb ↗" }));
  }
  if (m.links && m.links.tmdb) {
    links.append(el("a", { href: m.links.tmdb, target: "_blank", rel: "noopener", text: "TMDB ↗" }));
  }
  const chips = el("ul", { class: "chips small", "aria-label": "Genres" });
  for (const g of m.genres) chips.append(el("li", { text: g }));
  const actions = el(
    "div",
    { class: "dlg-actions" },
    el("span", { class: "hint", text: "Your rating" }),
    makeStars(m, ratingOf(m.movieId)),
  );
  if (state.user === null) {
    const fav = el("button", {
      type: "button",
      class: "btn btn-ghost dlg-fav",
      "data-movie-id": m.movieId,
      onclick: () =>
        setFavorite(state.favorite && state.favorite.movieId === m.movieId ? null : m),
    });
    syncFavButton(fav);
    actions.append(fav);
  }
  const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": "Similar movies" });
  const panel = el("div", { class: "tab-panel", role: "tabpanel", id: "sim-panel", tabindex: "0" });
  const kinds = [
    ["cf", "Viewers also liked", "People who liked this movie also rated these highly."],
    ["content", "Similar in content", "Movies close to this one in genres, title and tags."],
  ];
  const tabButtons = kinds.map(([kind, label, note]) =>
    el("button", {
      type: "button",
      class: "tab",
      role: "tab",
      id: `tab-${kind}`,
      "aria-controls": "sim-panel",
      "aria-selected": "false",
      tabindex: "-1",
      text: label,
      onclick: () => selectTab(kind, note),
    }),
  );
  tabs.append(...tabButtons);
  tabs.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    const i = tabButtons.indexOf(document.activeElement);
    const next = tabButtons[(i + (ev.key === "ArrowRight" ? 1 : tabButtons.length - 1)) % 2];
    next.focus();
    next.click();
  });
  const cache = {};
  async function selectTab(kind, note) {
    for (const b of tabButtons) {
      const on = b.id === `tab-${kind}`;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", `tab-${kind}`);
    panel.replaceChildren(el("p", { class: "loading", text: "Loading…" }));
    try {
      cache[kind] ||= await api(
        `/movies/${m.movieId}/similar${query({ k: 12, kind, model: state.model })}`,
      );
    } catch (err) {
      panel.replaceChildren(el("div", { class: "alert", role: "alert", text: err.message }));
      return;
    }
    const items = cache[kind].items;
    if (!items.length) {
      panel.replaceChildren(el("p", { class: "hint", text: "No similar movies found for this one." }));
      return;
    }
    panel.replaceChildren(
      el("p", { class: "tab-note", text: note }),
      el(
        "ul",
        { class: "sim-list" },
        ...items.map((s) =>
          el(
            "li",
            { "data-movie-id": s.movieId },
            el("button", { type: "button", text: niceTitle(s.title), onclick: () => openMovie(s.movieId) }),
            el("span", {
              class: "meta",
              text: [s.year, s.genres.slice(0, 3).join(", ")].filter(Boolean).join(" · "),
            }),
          ),
        ),
      ),
    );
  }
  body.replaceChildren(
    el(
      "div",
      { class: "dlg-head" },
      el("div", { class: "poster", style: posterStyle(m), "aria-hidden": "true" }, initial(m)),
      el(
        "div",
        {},
        el("h2", { id: "dlg-title", text: name }),
        el("p", { class: "dlg-facts", text: facts.filter(Boolean).join(" · ") }),
        chips,
        links.childElementCount ? links : null,
      ),
    ),
    actions,
    tabs,
    panel,
  );
  selectTab(kinds[0][0], kinds[0][2]);
}

// -- search ------------------------------------------------------------------------------------
function setupSearch() {
  const input = $("#search-input");
  const list = $("#search-list");
  let controller = null;
  let items = [];
  let active = -1;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute("aria-selected", String(j === i)));
    if (i >= 0 && list.children[i]) {
      input.setAttribute("aria-activedescendant", list.children[i].id);
      list.children[i].scrollIntoView({ block: "nearest" });
    }
  };
  const choose = (i) => {
    const m = items[i];
    if (!m) return;
    items = []; // do not reopen these when focus comes back from the dialog
    input.value = "";
    close();
    openMovie(m.movieId);
  };
  const render = (q) => {
    list.replaceChildren();
    list.dataset.query = q;
    if (!items.length) {
      list.append(el("li", { class: "s-empty", role: "option", "aria-disabled": "true", text: `No movies match “${q}”.` }));
    }
    items.forEach((m, i) =>
      list.append(
        el(
          "li",
          { id: `sugg-${i}`, role: "option", "aria-selected": "false", "data-movie-id": m.movieId, onclick: () => choose(i) },
          el("span", { class: "s-title", text: niceTitle(m.title) }),
          el("span", { class: "s-meta", text: [m.year, m.genres.slice(0, 2).join(", ")].filter(Boolean).join(" · ") }),
        ),
      ),
    );
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
  };
  const run = debounce(async () => {
    const q = input.value.trim();
    if (q.length < 2) return close();
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const data = await api(`/movies/search${query({ q, limit: 8 })}`, { signal: controller.signal });
      if (input.value.trim() !== q) return; // typed on meanwhile
      items = data.items;
      render(q);
    } catch (err) {
      if (err.name === "AbortError") return;
      items = [];
      list.replaceChildren(el("li", { class: "s-empty", role: "option", "aria-disabled": "true", text: err.message }));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  }, 180);

  input.addEventListener("input", run);
  input.addEventListener("focus", () => {
    if (items.length && input.value.trim().length >= 2) render(input.value.trim());
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" && items.length) {
      ev.preventDefault();
      if (list.hidden) render(input.value.trim());
      highlight(Math.min(items.length - 1, active + 1));
    } else if (ev.key === "ArrowUp" && items.length) {
      ev.preventDefault();
      highlight(Math.max(0, active - 1));
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (!list.hidden && items.length) choose(active >= 0 ? active : 0);
    } else if (ev.key === "Escape") {
      close();
    }
  });
  list.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep focus for the click
  input.addEventListener("blur", () => setTimeout(close, 120));
}

// -- filters, models, user ---------------------------------------------------------------------
const reloadSoon = debounce(() => loadRecs(), 150);

function resetPaging() {
  state.k = PAGE;
  state.shown = [];
}

function updateFilterCount() {
  const n = state.genres.size + (state.yearMin !== null || state.yearMax !== null ? 1 : 0);
  $("#filter-count").textContent = n ? `${n} active` : "";
}

async function loadGenres() {
  const box = $("#genre-chips");
  try {
    const data = await api("/genres");
    box.replaceChildren(
      ...data.genres.map((g) =>
        el("button", {
          type: "button",
          class: "chip",
          "aria-pressed": "false",
          text: g,
          onclick: (ev) => {
            const on = !state.genres.has(g);
            if (on) state.genres.add(g);
            else state.genres.delete(g);
            ev.currentTarget.setAttribute("aria-pressed", String(on));
            updateFilterCount();
            resetPaging();
            reloadSoon();
          },
        }),
      ),
    );
  } catch (err) {
    box.replaceChildren(el("span", { class: "field-error", text: `Genres unavailable: ${err.message}` }));
  }
}

function readYears() {
  const parse = (id) => {
    const v = $(id).value.trim();
    return v === "" ? null : Number(v);
  };
  const lo = parse("#year-min");
  const hi = parse("#year-max");
  const err = $("#year-error");
  const bad = [lo, hi].some((v) => v !== null && (!Number.isInteger(v) || v < 1800 || v > 2100));
  if (bad || (lo !== null && hi !== null && lo > hi)) {
    err.textContent = bad ? "Enter a four-digit year." : "“From” must not be after “To”.";
    err.hidden = false;
    return;
  }
  err.hidden = true;
  if (lo === state.yearMin && hi === state.yearMax) return;
  state.yearMin = lo;
  state.yearMax = hi;
  updateFilterCount();
  resetPaging();
  loadRecs();
}

function clearFilters() {
  state.genres.clear();
  for (const c of document.querySelectorAll("#genre-chips .chip")) c.setAttribute("aria-pressed", "false");
  $("#year-min").value = "";
  $("#year-max").value = "";
  $("#year-error").hidden = true;
  state.yearMin = state.yearMax = null;
  updateFilterCount();
  resetPaging();
  loadRecs();
}

function modelLabel(label) {
  const m = state.models.find((x) => x.label === label);
  if (!m) return label;
  return m.label.toLowerCase() === String(m.class).toLowerCase() ? m.class : `${m.label} (${m.class})`;
}

async function loadModels() {
  const sel = $("#model-select");
  try {
    const data = await api("/models");
    state.models = data.models;
    if (!state.models.some((m) => m.label === state.model)) {
      state.model = data.default;
      state.picked = false;
    }
    sel.replaceChildren(
      ...state.models.map((m) =>
        el("option", { value: m.label, selected: m.label === state.model, text: modelLabel(m.label) }),
      ),
    );
    sel.disabled = state.models.length < 2;
  } catch (err) {
    sel.replaceChildren(el("option", { text: "Unavailable" }));
    showAlert(err.message);
  }
}

async function enterUser(u) {
  state.user = u;
  $("#toast").hidden = true;
  resetPaging();
  $("#user-banner-text").textContent = `Viewing MovieLens user ${u}`;
  $("#user-banner").hidden = false;
  await Promise.all([loadHistory(), loadRecs()]);
  $("#main").focus({ preventScroll: true });
}

async function exitUser() {
  state.user = null;
  state.history = [];
  $("#user-banner").hidden = true;
  $("#user-input").value = "";
  resetPaging();
  renderProfile();
  await loadRecs();
}

function setupControls() {
  $("#model-select").addEventListener("change", (ev) => {
    state.model = ev.target.value;
    state.picked = true;
    localStorage.setItem(STORE + "model", state.model);
    resetPaging();
    loadRecs();
  });
  const years = debounce(readYears, 450);
  $("#year-min").addEventListener("input", years);
  $("#year-max").addEventListener("input", years);
  $("#clear-filters").addEventListener("click", clearFilters);
  $("#more").addEventListener("click", () => {
    state.k += PAGE;
    loadRecs();
  });
  $("#user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const raw = $("#user-input").value.trim();
    const u = Number(raw);
    if (!raw || !Number.isInteger(u) || u < 0) {
      toast("Enter a whole-number user id, e.g. 196.", true);
      return;
    }
    enterUser(u);
  });
  $("#user-exit").addEventListener("click", exitUser);
  $("#dlg-close").addEventListener("click", () => dialog().close());
  dialog().addEventListener("click", (ev) => {
    if (ev.target === dialog()) dialog().close(); // a click on the backdrop
  });
  if (window.matchMedia("(max-width: 760px)").matches) $("#filters").open = false;
}

async function main() {
  setupSearch();
  setupControls();
  renderProfile();
  await Promise.all([loadModels(), loadGenres(), loadSessionRatings()]);
  renderProfile();
  await loadRecs();
  document.body.dataset.ready = "true";
}

main();
