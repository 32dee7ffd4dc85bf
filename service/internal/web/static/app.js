// The readocr page. No framework and no other host: it uses the public API only
// (GET / for the version, /languages, POST /read_ocr, POST /jobs, GET /jobs/{id}[/events|/result]).
'use strict';

const LOW = 60; // words read with less confidence (%) are marked
const POLL_MS = 500;
const KEY = 'readocr.apiKey'; // session storage: this tab only
const DONE = new Set(['succeeded', 'succeeded_with_errors', 'failed', 'canceled']);
const EXT = { text: 'txt', json: 'json', pdf: 'pdf', hocr: 'hocr', alto: 'xml', tsv: 'tsv' };
const NAMES = { text: 'Text', json: 'JSON', pdf: 'Searchable PDF', hocr: 'hOCR', alto: 'ALTO', tsv: 'TSV' };

// What each of the service's error codes means to a person (the code and message follow).
const MESSAGES = {
  unsupported_media_type: 'This file is not an image or document the service reads. Try a PDF, PNG, JPEG, TIFF, GIF, WebP, BMP or PNM file.',
  unsupported_content_type: 'The page sent the file in a way the service does not take. Reload the page and try again.',
  undecodable_image: 'The file looks like an image but cannot be decoded: it may be damaged or cut short.',
  undecodable_document: 'The PDF cannot be opened: it may be damaged.',
  encrypted_pdf: 'This PDF is protected by a password. Remove the password and try again.',
  payload_too_large: 'The file is larger than the service accepts.',
  image_too_large: 'The image has more pixels than the service reads at once. Scale it down and try again.',
  too_many_pages: 'The document has more pages than one request may read. Choose fewer pages.',
  invalid_pages: 'The page selection does not fit this document. Use e.g. 1-3,7 or 5-, within its pages.',
  invalid_lang: 'The language choice is not valid.',
  unknown_language: 'A chosen language is not installed on the service.',
  invalid_format: 'This output format cannot be made with these options.',
  invalid_config: 'The options are not valid.',
  queue_full: 'The service is busy.',
  too_many_jobs: 'The service has too many documents waiting.',
  queue_timeout: 'The service is busy and no reader was free in time.',
  server_busy: 'The service is busy.',
  not_ready: 'The service is starting or stopping.',
  request_timeout: 'The file took too long to arrive.',
  ocr_timeout: 'Reading took longer than the service allows for one request.',
  worker_lost: 'The service lost the reader of this document several times and gave up.',
  job_canceled: 'The job was canceled.',
  internal: 'The service had an internal problem.',
  network: 'The service cannot be reached. Is it running, and is this page served by it?',
};

const $ = (id) => document.getElementById(id);
const state = { file: null, doc: null, imageURL: null, page: 0, noEvents: false, prepared: {} };

class ApiError extends Error {
  constructor(status, code, message, requestId, retryAfter) {
    super(message);
    Object.assign(this, { status, code, requestId, retryAfter });
  }
}

// api fetches path with the API key, and throws the service's JSON error as an ApiError.
async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers.set('Authorization', 'Bearer ' + key);
  let resp;
  try {
    resp = await fetch(path, { ...init, headers });
  } catch (e) {
    throw new ApiError(0, 'network', e.message, '', 0);
  }
  if (resp.ok) return resp;
  let body = {};
  try { body = await resp.json(); } catch (_) { /* not the service's JSON */ }
  const err = body.error || {};
  throw new ApiError(resp.status, err.code || '', err.message || resp.statusText, body.request_id || '',
    Number(resp.headers.get('Retry-After')) || 0);
}

// explain turns an error into a sentence and the service's own words.
function explain(e) {
  if (!(e instanceof ApiError)) return { text: 'The page failed: ' + e.message };
  let text = MESSAGES[e.code];
  if (!text) {
    if (e.status === 401) text = 'The service needs an API key. Enter it under “API key” and try again.';
    else if (e.status === 403) text = 'This API key is not allowed to do that.';
    else if (e.status === 429) text = 'Too many requests: the service asks to slow down.';
    else if (e.status >= 500) text = 'The service had a problem.';
    else text = 'The service refused the request.';
  }
  if (e.retryAfter) text += ` Try again in ${e.retryAfter} s.`;
  if (e.status === 0) return { text, details: e.message };
  const req = e.requestId ? ` (request ${e.requestId})` : '';
  return { text, details: `The service answered ${e.status}${e.code ? ' ' + e.code : ''}: ${e.message}${req}` };
}

function showError(x) {
  const box = $('error');
  box.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = x.text;
  box.append(strong);
  if (x.details) {
    const p = document.createElement('p');
    p.className = 'details';
    p.textContent = x.details;
    box.append(p);
  }
  box.hidden = false;
  box.focus();
}

function say(text) { $('message').textContent = text; }

// --- the form -------------------------------------------------------------------------------

async function loadMeta() {
  try {
    const idx = await (await api('/', { headers: { Accept: 'application/json' } })).json();
    if (idx.version) $('version').textContent = `Version ${idx.version}.`;
  } catch (_) { /* the page works without it */ }
  const box = $('langs');
  box.querySelectorAll('label').forEach((l) => l.remove());
  try {
    const l = await (await api('/languages')).json();
    for (const code of l.languages) {
      const label = document.createElement('label');
      const cb = document.createElement('input');
      Object.assign(cb, { type: 'checkbox', name: 'lang', value: code, checked: code === l.default });
      label.append(cb, code);
      box.append(label);
    }
    $('langs-help').textContent = 'One or more; the first is the main one. The service\'s default: ' + l.default + '.';
  } catch (e) {
    $('langs-help').textContent = 'The languages could not be loaded: ' + explain(e).text + ' The service\'s default will be used.';
  }
}

function chooseFile(file) {
  state.file = file || null;
  say(file ? `Chosen: ${file.name} (${Math.ceil(file.size / 1024)} KiB).` : '');
}

function setUpForm() {
  const key = $('key');
  key.value = sessionStorage.getItem(KEY) || '';
  if (key.value) $('key-box').open = true;
  key.addEventListener('change', () => {
    if (key.value) sessionStorage.setItem(KEY, key.value); else sessionStorage.removeItem(KEY);
    loadMeta();
  });
  $('file').addEventListener('change', (e) => chooseFile(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files.length) {
      $('file').files = e.dataTransfer.files;
      chooseFile(e.dataTransfer.files[0]);
    }
  });
  $('form').addEventListener('submit', onSubmit);
  $('page-select').addEventListener('change', (e) => renderPage(Number(e.target.value)));
}

// options are the form's fields for a request in format.
function formData(format) {
  const fd = new FormData();
  fd.append('image', state.file, state.file.name);
  const langs = [...document.querySelectorAll('input[name=lang]:checked')].map((c) => c.value);
  if (langs.length) fd.append('lang', langs.join('+'));
  const pages = $('pages').value.trim();
  if (pages) fd.append('pages', pages);
  fd.append('format', format);
  return fd;
}

// isDocument tells PDFs and TIFFs (read as jobs, page by page) from single images.
async function isDocument(file) {
  const b = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  const s = String.fromCharCode(...b);
  return s === '%PDF' || s === 'II*\0' || s === 'MM\0*';
}

async function onSubmit(ev) {
  ev.preventDefault();
  $('error').hidden = true;
  if (!state.file) {
    showError({ text: 'Choose an image or a document first.' });
    $('file').focus();
    return;
  }
  const go = $('go');
  go.disabled = true;
  go.textContent = 'Reading…';
  $('result').hidden = true;
  if (state.imageURL) URL.revokeObjectURL(state.imageURL);
  state.imageURL = null;
  state.prepared = {};
  try {
    state.document = await isDocument(state.file);
    const blob = await run('json');
    const doc = JSON.parse(await blob.text());
    if (!state.document) state.imageURL = URL.createObjectURL(state.file);
    showResult(doc);
    const chosen = $('format').value;
    if (chosen !== 'text') prepare(chosen);
  } catch (e) {
    say('');
    showError(explain(e));
  } finally {
    go.disabled = false;
    go.textContent = 'Read the text';
  }
}

// run reads the chosen file in format: images at once (/read_ocr), documents as jobs.
async function run(format) {
  if (!state.document) {
    say(`Reading ${state.file.name}…`);
    return (await api('/read_ocr', { method: 'POST', body: formData(format) })).blob();
  }
  say(`Sending ${state.file.name}…`);
  const job = await (await api('/jobs', { method: 'POST', body: formData(format) })).json();
  showProgress(job);
  const done = await follow(job.id);
  try {
    // A failed job's result is the error /read_ocr would have answered: api throws it.
    return await (await api(`/jobs/${encodeURIComponent(job.id)}/result`)).blob();
  } finally {
    if (DONE.has(done.status)) api(`/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' }).catch(() => {});
  }
}

// --- job progress: events when the service has them, polling otherwise ---------------------

async function follow(id) {
  if (!state.noEvents) {
    const job = await followEvents(id);
    if (job) return job;
  }
  for (;;) {
    const job = await (await api(`/jobs/${encodeURIComponent(id)}`)).json();
    showProgress(job);
    if (DONE.has(job.status)) return job;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// followEvents reads /jobs/{id}/events (each event's data a job); null when there are none.
async function followEvents(id) {
  let resp;
  try {
    resp = await api(`/jobs/${encodeURIComponent(id)}/events`, { headers: { Accept: 'text/event-stream' } });
  } catch (e) {
    if (e.status === 404 || e.status === 405) { state.noEvents = true; return null; }
    throw e;
  }
  if (!(resp.headers.get('Content-Type') || '').startsWith('text/event-stream')) { state.noEvents = true; return null; }
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let data = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line.startsWith('data:')) { data += line.slice(5).replace(/^ /, ''); continue; }
      if (line !== '' || !data) continue;
      let job = null;
      try { job = JSON.parse(data); } catch (_) { /* not a job */ }
      data = '';
      if (job && job.status) {
        showProgress(job);
        if (DONE.has(job.status)) { reader.cancel(); return job; }
      }
    }
  }
}

function showProgress(job) {
  $('progress-box').hidden = false;
  const bar = $('progress');
  const { pages_done: done, pages_total: total } = job.progress;
  let label;
  if (job.status === 'succeeded' || job.status === 'succeeded_with_errors') {
    bar.value = 100;
    label = `Done: ${total} of ${total} pages read, 100 %`;
  } else if (total > 0) {
    const pct = Math.floor((100 * done) / total);
    bar.value = pct;
    label = `Reading: ${done} of ${total} pages read, ${pct} %`;
  } else {
    bar.removeAttribute('value'); // indeterminate until a worker has opened the document
    label = job.status === 'queued' ? 'Queued: waiting for a free reader' : 'Opening the document';
  }
  $('progress-label').textContent = label; // in the live region: read out as it changes
  say('');
}

// --- the result -------------------------------------------------------------------------------

function showResult(doc) {
  state.doc = doc;
  const low = doc.words.filter((w) => w.confidence < LOW);
  const pages = doc.pages.length;
  const lowText = low.length === 0 ? `No word is below ${LOW} % confidence.`
    : `${low.length} word${low.length === 1 ? '' : 's'} below ${LOW} % confidence ${low.length === 1 ? 'is' : 'are'} marked in orange.`;
  $('summary').textContent = `${doc.words.length} words on ${pages} page${pages === 1 ? '' : 's'}, ` +
    `mean confidence ${doc.confidence} %. ${lowText}`;
  $('text').textContent = doc.text;
  const sel = $('page-select');
  sel.replaceChildren(...doc.pages.map((p, i) => new Option(`${p.page} of ${pages}`, String(i))));
  $('page-nav').hidden = pages < 2;
  showLowWords(low);
  showDownloads();
  renderPage(0);
  say(`Read ${state.file.name}: ${doc.words.length} words.`);
  $('result').hidden = false;
  $('result-title').focus();
}

const SVG = 'http://www.w3.org/2000/svg';

// renderPage draws page i's word boxes over its image (single images) or on a blank page of
// its size with the words written in place (documents: the page's pixels stay on the service).
function renderPage(i) {
  state.page = i;
  const p = state.doc.pages[i];
  const svg = $('boxes');
  const img = $('image');
  const blank = !state.imageURL;
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${p.width} ${p.height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  $('page').classList.toggle('blank', blank);
  img.hidden = blank;
  if (!blank && img.getAttribute('src') !== state.imageURL) {
    img.onerror = () => { state.imageURL = null; renderPage(state.page); }; // e.g. PNM: no decoder here
    img.src = state.imageURL;
  }
  if (blank) svg.append(svgEl('rect', { x: 0, y: 0, width: p.width, height: p.height, fill: '#fff' }));
  let low = 0;
  p.words.forEach((w, n) => {
    const b = w.bbox;
    const r = svgEl('rect', { x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0, class: 'word' });
    if (w.confidence < LOW) { r.classList.add('low'); low++; }
    r.dataset.n = n;
    const t = svgEl('title', {});
    t.textContent = `${w.text}: ${w.confidence} % confidence`;
    r.append(t);
    if (blank) {
      const h = b.y1 - b.y0;
      const txt = svgEl('text', { x: b.x0, y: b.y1 - h * 0.2, 'font-size': h * 0.8, textLength: Math.max(b.x1 - b.x0, 1),
        lengthAdjust: 'spacingAndGlyphs', class: 'word', 'aria-hidden': 'true' });
      txt.textContent = w.text;
      svg.append(txt);
    }
    svg.append(r);
  });
  svg.setAttribute('aria-label', `Page ${p.page}: ${p.words.length} word boxes, ${low} below ${LOW} % confidence`);
  $('caption').textContent = (blank ? 'The words where they were found on the page. ' : '') +
    `Page ${p.page}, ${p.width} × ${p.height} pixels: ${p.words.length} words. Point at a box for its word and confidence; orange boxes are below ${LOW} %.`;
}

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function setUpTips() {
  const page = $('page');
  const tip = $('tip');
  page.addEventListener('mousemove', (e) => {
    const r = e.target.closest('rect.word');
    if (!r) { tip.hidden = true; return; }
    const w = state.doc.pages[state.page].words[Number(r.dataset.n)];
    tip.textContent = `“${w.text}” ${w.confidence} %`;
    const box = page.getBoundingClientRect();
    tip.style.left = `${e.clientX - box.left + 12}px`;
    tip.style.top = `${e.clientY - box.top + 12}px`;
    tip.hidden = false;
  });
  page.addEventListener('mouseleave', () => { tip.hidden = true; });
}

function showLowWords(low) {
  const list = $('low');
  list.replaceChildren(...low.slice(0, 100).map((w) => {
    const li = document.createElement('li');
    const conf = document.createElement('span');
    conf.className = 'conf';
    conf.textContent = ` ${w.confidence} %`;
    li.append(w.text, conf);
    if (state.doc.pages.length > 1) li.append(` (page ${w.page})`);
    return li;
  }));
  $('low-box').hidden = low.length === 0;
}

// --- downloads --------------------------------------------------------------------------------

function baseName() { return state.file.name.replace(/\.[^.]+$/, '') || 'page'; }

function save(blob, format) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${baseName()}${format === 'pdf' && state.file.name.endsWith('.pdf') ? '.ocr' : ''}.${EXT[format]}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

function showDownloads() {
  const box = $('downloads');
  box.replaceChildren();
  for (const format of ['text', 'pdf', 'hocr', 'alto', 'tsv', 'json']) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.id = 'download-' + format;
    b.textContent = `${NAMES[format]} (.${EXT[format]})`;
    b.addEventListener('click', () => download(format, b));
    box.append(b);
  }
}

// prepare asks for format now, so that its download is at hand (the service reads the file again).
function prepare(format) {
  const b = $('download-' + format);
  if (!state.prepared[format]) state.prepared[format] = run(format);
  b.disabled = true;
  b.textContent = `${NAMES[format]}: preparing…`;
  state.prepared[format].then(() => {
    b.classList.add('ready');
    b.textContent = `${NAMES[format]} (.${EXT[format]}): ready`;
    say(`${NAMES[format]} is ready to download.`);
  }, (e) => {
    delete state.prepared[format];
    b.textContent = `${NAMES[format]} (.${EXT[format]})`;
    showError(explain(e));
  }).finally(() => { b.disabled = false; });
}

async function download(format, button) {
  if (format === 'text' || format === 'json') {
    const body = format === 'text' ? state.doc.text : JSON.stringify(state.doc, null, 1);
    save(new Blob([body], { type: format === 'text' ? 'text/plain' : 'application/json' }), format);
    return;
  }
  if (!state.prepared[format]) {
    prepare(format);
  }
  try {
    const blob = await state.prepared[format];
    save(blob, format);
  } catch (_) { /* shown by prepare */ }
  button.focus();
}

setUpForm();
setUpTips();
loadMeta();
