// The review page's script: asks for the API key once (kept in sessionStorage), loads the review queue, highlights
// the explanation n-grams in each comment, sends confirmations and corrections to /v1/feedback, and shows the
// dashboard from /v1/review/stats. Plain browser JavaScript, no build step, no dependencies.
'use strict';

(() => {
  const KEY_STORAGE = 'pqrs.review.key';
  const REVIEWER_STORAGE = 'pqrs.review.reviewer';
  const PAGE_SIZE = 20;
  const DAYS_SHOWN = 14;
  // Heads of the shipped taxonomy get Spanish names; a user's own heads are shown by their name.
  const HEAD_NAMES = { type: 'Tipo', theme: 'Tema', area: 'Área' };

  const percent = new Intl.NumberFormat('es-CO', { style: 'percent', maximumFractionDigits: 0 });
  const integer = new Intl.NumberFormat('es-CO');
  // Comments are received in Colombia; their times are shown there whatever the reviewer's machine says.
  const dateTime = new Intl.DateTimeFormat('es-CO', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'America/Bogota' });

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE),
    reviewer: sessionStorage.getItem(REVIEWER_STORAGE) || '',
    model: null,
    items: [],
    total: 0,
    offset: 0,
    filters: {},
    current: 0,
    // Per item id: head -> {label, agrees, reviewer}: what was reviewed, before or on this page.
    reviewed: new Map(),
    // Per item id: index of the active head.
    activeHead: new Map(),
  };

  const $ = (selector, root = document) => root.querySelector(selector);

  /** Creates an element with attributes and children (strings become text nodes, never HTML). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const headName = (head) => HEAD_NAMES[head] || head;
  const labelText = (label) => String(label).replaceAll('_', ' ');

  // ---- Messages -------------------------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(code, status, message) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  /** A message a reviewer can act on, for an error answer of the API. */
  function messageFor(code, status, serverMessage) {
    switch (code) {
      case 'unauthorized':
        return 'La clave de la API no es válida. Escríbala de nuevo.';
      case 'admin_disabled':
        return 'El servidor no tiene clave de API: inícielo con --api-key o con la variable PQRS_API_KEY.';
      case 'store_disabled':
        return 'El servidor no guarda las predicciones (se inició con --db none): no hay cola que revisar.';
      case 'unknown_id':
        return 'Ese comentario ya no está en el registro de predicciones.';
      case 'unknown_head':
      case 'unknown_label':
        return 'El servidor no acepta esa etiqueta para esta dimensión (¿cambió el modelo?). Pulse r para recargar.';
      case 'overloaded':
      case 'shutting_down':
        return 'El servidor está ocupado o reiniciándose. Intente de nuevo en unos segundos.';
      case 'not_found':
        return 'Este servidor no tiene la API de revisión (¿una versión anterior de pqrs?).';
      default:
        break;
    }
    if (status >= 500) return `El servidor falló (HTTP ${status}). Intente de nuevo; si sigue, revise sus registros.`;
    return `El servidor rechazó la petición (HTTP ${status}${code ? `, ${code}` : ''})${serverMessage ? `: ${serverMessage}` : '.'}`;
  }

  function showAlert(message, { retry = false } = {}) {
    const alert = $('#alert');
    alert.replaceChildren(el('p', { text: message }));
    if (retry) {
      alert.append(el('button', { type: 'button', onclick: () => start() }, 'Reintentar'));
    }
    alert.hidden = false;
  }

  function clearAlert() {
    $('#alert').hidden = true;
    $('#alert').replaceChildren();
  }

  function announce(message) {
    // Cleared first so that the same message twice is read twice.
    const status = $('#status');
    status.textContent = '';
    window.setTimeout(() => { status.textContent = message; }, 30);
  }

  // ---- API ------------------------------------------------------------------------------------------------

  async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json', Authorization: `Bearer ${state.key}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      throw new ApiFailure('network', 0,
        'No se pudo contactar el servidor. ¿Está en marcha «pqrs serve»? Revise la conexión y reintente.');
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const error = payload && payload.error ? payload.error : {};
      throw new ApiFailure(error.code || null, response.status, messageFor(error.code, response.status, error.message));
    }
    return payload;
  }

  function queuePath() {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(state.filters)) {
      if (value) query.set(name, value);
    }
    query.set('limit', String(PAGE_SIZE));
    query.set('offset', String(state.offset));
    return `/v1/review/queue?${query}`;
  }

  /** Runs `work`, turning a failure into a message; a rejected key sends the reviewer back to the key form. */
  async function guarded(work) {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      if (error.code === 'unauthorized') {
        logout(error.message);
      } else {
        showAlert(error.message, { retry: error.code === 'network' || error.status >= 500 });
      }
      return undefined;
    }
  }

  // ---- Explanation highlighting ---------------------------------------------------------------------------

  /**
   * Folds `text` the way the service's normaliser does (compatibility decomposition, accents dropped, lower case,
   * every run of other characters a single space) and remembers, for each folded character, the span of the
   * original text it came from, so that a match in the folded text maps back to the text shown.
   */
  function fold(text) {
    let folded = '';
    const starts = [];
    const ends = [];
    let afterSpace = true;
    for (let i = 0; i < text.length;) {
      const codePoint = text.codePointAt(i);
      const character = String.fromCodePoint(codePoint);
      const next = i + character.length;
      const base = character.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
      for (const c of base) {
        if (/[\p{L}\p{N}#]/u.test(c)) {
          folded += c;
          afterSpace = false;
        } else if (!afterSpace) {
          folded += ' ';
          afterSpace = true;
        } else {
          continue;
        }
        starts.push(i);
        ends.push(next);
      }
      i = next;
    }
    return { folded, starts, ends };
  }

  const WORD_CHARACTER = /[\p{L}\p{N}]/u;

  /**
   * Spans `[start, end)` of `text` where each head's explanation n-grams occur, with the head and weight. A match
   * inside a word (the model's character n-grams) is widened to the whole word, so that the reviewer reads words.
   */
  function explanationSpans(text, heads) {
    const { folded, starts, ends } = fold(text);
    const spans = [];
    for (const [head, answer] of Object.entries(heads)) {
      for (const evidence of answer.explanation || []) {
        const ngram = fold(evidence.ngram).folded.trim();
        // Placeholders (#telefono, #id…) stand for text that masking has already replaced.
        if (ngram.length < 2 || ngram.startsWith('#')) continue;
        for (let at = folded.indexOf(ngram); at !== -1; at = folded.indexOf(ngram, at + 1)) {
          let start = starts[at];
          let end = ends[at + ngram.length - 1];
          while (start > 0 && WORD_CHARACTER.test(text[start - 1])) start--;
          while (end < text.length && WORD_CHARACTER.test(text[end])) end++;
          spans.push({ start, end, head, ngram: evidence.ngram, weight: evidence.weight });
        }
      }
    }
    return spans;
  }

  /** Overlapping spans joined into regions, each with the spans it holds. */
  function regions(spans) {
    const sorted = [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
    const joined = [];
    for (const span of sorted) {
      const last = joined[joined.length - 1];
      if (last && span.start < last.end) {
        last.end = Math.max(last.end, span.end);
        last.spans.push(span);
      } else {
        joined.push({ start: span.start, end: span.end, spans: [span] });
      }
    }
    return joined;
  }

  /** The comment as text nodes and <mark> elements; each mark lists the heads whose explanation it is part of. */
  function highlightedText(text, heads) {
    const nodes = [];
    let at = 0;
    for (const region of regions(explanationSpans(text, heads))) {
      if (region.start > at) nodes.push(document.createTextNode(text.slice(at, region.start)));
      const headsHere = [...new Set(region.spans.map((s) => s.head))];
      const title = [...new Set(region.spans.map((s) => `${headName(s.head)}: «${s.ngram}» +${s.weight.toFixed(2)}`))]
        .join('\n');
      nodes.push(el('mark', { 'data-heads': headsHere.join(' '), title }, text.slice(region.start, region.end)));
      at = region.end;
    }
    if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
    return nodes;
  }

  // ---- Queue ----------------------------------------------------------------------------------------------

  function modelHeads() {
    return state.model ? state.model.heads : [];
  }

  /** The item's heads in the model's order (heads the model no longer has come last). */
  function itemHeads(item) {
    const names = Object.keys(item.heads || {});
    const order = modelHeads().map((h) => h.name);
    return names.sort((a, b) => {
      const [ia, ib] = [order.indexOf(a), order.indexOf(b)];
      return (ia === -1 ? order.length : ia) - (ib === -1 ? order.length : ib);
    });
  }

  function labelsOf(head) {
    const info = modelHeads().find((h) => h.name === head);
    return info ? info.labels : [];
  }

  /** Labels offered as buttons (numbered 1–9): the top-k, then, for small heads, every other label. */
  function candidates(head, answer) {
    const labels = labelsOf(head);
    const probability = new Map((answer.top_k || []).map((s) => [s.label, s.probability]));
    const chosen = (answer.top_k || []).map((s) => s.label);
    if (!chosen.includes(answer.label)) chosen.unshift(answer.label);
    if (labels.length <= 9) {
      for (const label of labels) if (!chosen.includes(label)) chosen.push(label);
    }
    return chosen.slice(0, 9).map((label) => ({ label, probability: probability.get(label) }));
  }

  function reviewedOf(item) {
    if (!state.reviewed.has(item.id)) {
      const known = {};
      for (const correction of item.corrections || []) {
        const predicted = item.heads[correction.head] ? item.heads[correction.head].label : null;
        known[correction.head] = {
          label: correction.correct_label,
          agrees: correction.agrees ?? correction.correct_label === predicted,
          reviewer: correction.reviewer,
        };
      }
      state.reviewed.set(item.id, known);
    }
    return state.reviewed.get(item.id);
  }

  function resultText(record) {
    if (!record) return '';
    return record.agrees
      ? `Confirmada «${labelText(record.label)}» por ${record.reviewer}.`
      : `Corregida a «${labelText(record.label)}» por ${record.reviewer}.`;
  }

  function renderHead(item, index, head) {
    const answer = item.heads[head];
    const record = reviewedOf(item)[head];
    const fieldId = `item-${index}-${head}`;
    const choices = candidates(head, answer);
    const shown = new Set(choices.map((c) => c.label));
    const others = labelsOf(head).filter((label) => !shown.has(label));
    const buttons = choices.map((choice, n) => el('button', {
      type: 'button',
      class: `choice${choice.label === answer.label ? ' predicted' : ''}${record && record.label === choice.label ? ' chosen' : ''}`,
      'data-label': choice.label,
      'aria-keyshortcuts': String(n + 1),
      'aria-pressed': record && record.label === choice.label ? 'true' : 'false',
      onclick: () => review(index, head, choice.label),
    },
    el('kbd', { 'aria-hidden': 'true' }, String(n + 1)), ' ', labelText(choice.label),
    choice.probability === undefined ? null : el('span', { class: 'probability' }, percent.format(choice.probability))));
    const other = others.length === 0 ? null : el('div', { class: 'other' },
      el('label', { for: `${fieldId}-other` }, 'Otra etiqueta…'),
      el('select', { id: `${fieldId}-other`, class: 'other-label' },
        el('option', { value: '' }, '—'),
        others.map((label) => el('option', { value: label }, labelText(label)))),
      el('button', {
        type: 'button',
        class: 'apply-other',
        onclick: () => {
          const label = $(`#${CSS.escape(fieldId)}-other`).value;
          if (label) review(index, head, label);
          else announce('Elija primero una etiqueta de la lista.');
        },
      }, 'Corregir'));
    return el('fieldset', {
      class: `head${record ? ' done' : ''}`,
      'data-head': head,
      id: fieldId,
    },
    el('legend', {},
      `${headName(head)}: `, el('strong', {}, labelText(answer.label)), ' ',
      el('span', { class: 'confidence' }, `confianza ${percent.format(answer.confidence)}`),
      answer.needs_review ? el('span', { class: 'badge' }, 'bajo el umbral') : null),
    el('div', { class: 'choices' },
      el('button', {
        type: 'button',
        class: 'confirm',
        'aria-keyshortcuts': 'c',
        onclick: () => review(index, head, answer.label),
      }, 'Confirmar ', el('kbd', { 'aria-hidden': 'true' }, 'c')),
      buttons),
    other,
    el('p', { class: 'result', 'aria-live': 'polite' }, resultText(record)));
  }

  function renderItem(item, index) {
    const heads = itemHeads(item);
    const route = item.route || {};
    const received = item.received_at ? new Date(item.received_at) : null;
    const meta = [
      received && !Number.isNaN(received.getTime()) ? `Recibido ${dateTime.format(received)}` : null,
      item.channel ? `canal ${item.channel}` : null,
      route.area ? `área de destino ${labelText(route.area)}` : null,
      route.priority && route.priority !== 'normal' ? `prioridad ${route.priority}` : null,
      typeof item.uncertainty === 'number' ? `margen ${item.uncertainty.toFixed(2)}` : null,
    ].filter(Boolean).join(' · ');
    const number = state.offset + index + 1;
    const titleId = `item-${index}-title`;
    return el('li', { class: 'item', id: `item-${index}`, 'data-id': item.id, tabindex: '-1', 'aria-labelledby': titleId },
      el('h3', { id: titleId }, `Comentario ${number} `, el('code', {}, item.id)),
      el('p', { class: 'meta muted' }, meta),
      el('blockquote', { class: 'text', lang: 'es' }, highlightedText(item.text || '', item.heads || {})),
      el('div', { class: 'heads' }, heads.map((head) => renderHead(item, index, head))),
      el('div', { class: 'note field' },
        el('label', { for: `item-${index}-note` }, 'Nota (opcional, va con cada revisión de este comentario)'),
        el('input', { id: `item-${index}-note`, class: 'note-input', type: 'text', maxlength: '500' })));
  }

  function renderQueue() {
    const list = $('#queue');
    if (state.items.length === 0) {
      list.replaceChildren(el('li', { class: 'empty' }, 'No hay comentarios pendientes de revisión con estos filtros.'));
    } else {
      list.replaceChildren(...state.items.map(renderItem));
    }
    const first = state.total === 0 ? 0 : state.offset + 1;
    const last = state.offset + state.items.length;
    $('#queue-count').textContent = `${integer.format(state.total)} por revisar`;
    $('#page-info').textContent = state.total === 0 ? '' : `${first}–${last} de ${integer.format(state.total)}`;
    $('#prev-page').disabled = state.offset === 0;
    $('#next-page').disabled = last >= state.total;
    if (state.items.length > 0) select(Math.min(state.current, state.items.length - 1), { focus: false });
  }

  function headIndex(index) {
    return state.activeHead.get(state.items[index].id) || 0;
  }

  /** Marks item `index` (and its active head) as current; the highlighted n-grams follow the active head. */
  function select(index, { focus = true } = {}) {
    if (state.items.length === 0) return;
    state.current = Math.max(0, Math.min(index, state.items.length - 1));
    const item = state.items[state.current];
    const heads = itemHeads(item);
    const active = heads[Math.min(headIndex(state.current), heads.length - 1)];
    for (const node of document.querySelectorAll('#queue .item')) {
      const isCurrent = node.id === `item-${state.current}`;
      node.classList.toggle('current', isCurrent);
      if (isCurrent) node.setAttribute('aria-current', 'true');
      else node.removeAttribute('aria-current');
      for (const fieldset of node.querySelectorAll('fieldset.head')) {
        fieldset.classList.toggle('active', isCurrent && fieldset.dataset.head === active);
      }
      for (const mark of node.querySelectorAll('mark')) {
        mark.classList.toggle('active', (mark.dataset.heads || '').split(' ').includes(isCurrent ? active : ''));
      }
    }
    const node = $(`#item-${state.current}`);
    if (focus && node) {
      node.focus({ preventScroll: true });
      node.scrollIntoView({ block: 'nearest' });
    }
  }

  function moveHead(step) {
    if (state.items.length === 0) return;
    const heads = itemHeads(state.items[state.current]);
    const next = (headIndex(state.current) + step + heads.length) % heads.length;
    state.activeHead.set(state.items[state.current].id, next);
    select(state.current, { focus: false });
    announce(`Dimensión activa: ${headName(heads[next])}`);
  }

  /** Reviews on their way to the server, as `id NUL head`. */
  const sending = new Set();

  /** Sends one review (a confirmation when `label` is the prediction) and moves on to what is left to review. */
  async function review(index, head, label) {
    const item = state.items[index];
    if (!item) return;
    // Corrections are append-only: a double press or a repeated shortcut must not store the same review twice.
    const already = reviewedOf(item)[head];
    const busyKey = `${item.id}\u0000${head}`;
    if (sending.has(busyKey)) return;
    if (already && already.label === label) {
      announce(`${headName(head)} ya está revisada como «${labelText(label)}».`);
      return;
    }
    const note = $(`#item-${index}-note`).value.trim();
    const body = { id: item.id, head, correct_label: label, reviewer: state.reviewer };
    if (note) body.note = note;
    const fieldset = $(`#item-${index}-${CSS.escape(head)}`);
    fieldset.setAttribute('aria-busy', 'true');
    sending.add(busyKey);
    const stored = await guarded(() => api('/v1/feedback', { method: 'POST', body }));
    sending.delete(busyKey);
    fieldset.removeAttribute('aria-busy');
    if (!stored) return;
    clearAlert();
    const record = { label: stored.correct_label, agrees: stored.agrees, reviewer: stored.reviewer };
    reviewedOf(item)[head] = record;
    const replacement = renderHead(item, index, head);
    fieldset.replaceWith(replacement);
    announce(resultText(record));
    // The next head of this comment still without a review, else the next comment.
    const heads = itemHeads(item);
    const pending = heads.findIndex((h) => !reviewedOf(item)[h]);
    if (pending !== -1) {
      state.activeHead.set(item.id, pending);
      // The button pressed was replaced: focus goes back to the comment, not to the top of the page.
      select(index);
    } else {
      $(`#item-${index}`).classList.add('complete');
      select(index < state.items.length - 1 ? index + 1 : index);
    }
    scheduleStats();
  }

  // ---- Dashboard ------------------------------------------------------------------------------------------

  let statsTimer = null;
  function scheduleStats() {
    window.clearTimeout(statsTimer);
    statsTimer = window.setTimeout(() => loadStats(), 400);
  }

  function bar(fraction) {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
    return el('span', { class: 'bar', 'aria-hidden': 'true' }, fill);
  }

  function renderStats(stats) {
    $('#predictions-logged').textContent = integer.format(stats.predictions_logged ?? 0);
    $('#pending-review').textContent = integer.format(stats.pending_review ?? 0);
    const days = stats.corrections_per_day || [];
    $('#corrections-total').textContent = integer.format(days.reduce((sum, d) => sum + d.count, 0));
    // The model's order of heads (the API lists them by name).
    const order = modelHeads().map((h) => h.name);
    const rank = (head) => (order.includes(head) ? order.indexOf(head) : order.length);
    const agreement = Object.entries(stats.agreement || {}).sort(([a], [b]) => rank(a) - rank(b));
    $('#agreement-table tbody').replaceChildren(...(agreement.length === 0
      ? [el('tr', {}, el('td', { colspan: '4' }, 'Aún no hay revisiones.'))]
      : agreement.map(([head, a]) => el('tr', { 'data-head': head },
        el('th', { scope: 'row' }, headName(head)),
        el('td', {}, integer.format(a.reviewed)),
        el('td', {}, integer.format(a.agreed)),
        el('td', {}, bar(a.rate ?? 0), ' ', a.reviewed ? percent.format(a.rate) : '–')))));
    const recent = days.slice(-DAYS_SHOWN);
    const most = Math.max(1, ...recent.map((d) => d.count));
    $('#per-day-table tbody').replaceChildren(...(recent.length === 0
      ? [el('tr', {}, el('td', { colspan: '2' }, 'Aún no hay revisiones.'))]
      : recent.map((d) => el('tr', {},
        el('th', { scope: 'row' }, d.day),
        el('td', {}, bar(d.count / most), ' ', integer.format(d.count))))));
  }

  async function loadStats() {
    const stats = await guarded(() => api('/v1/review/stats'));
    if (stats) renderStats(stats);
  }

  // ---- Filters --------------------------------------------------------------------------------------------

  function fillFilterOptions() {
    const headSelect = $('#f-head');
    headSelect.replaceChildren(el('option', { value: '' }, 'Todas'),
      ...modelHeads().map((h) => el('option', { value: h.name }, headName(h.name))));
    fillLabelOptions();
    const areaHead = modelHeads().find((h) => h.name === 'area');
    $('#area-options').replaceChildren(...(areaHead ? areaHead.labels : []).map((label) => el('option', { value: label })));
  }

  function fillLabelOptions() {
    const head = $('#f-head').value;
    const labels = head
      ? labelsOf(head)
      : [...new Set(modelHeads().flatMap((h) => h.labels))].sort();
    const previous = $('#f-label').value;
    $('#f-label').replaceChildren(el('option', { value: '' }, 'Todas'),
      ...labels.map((label) => el('option', { value: label, selected: label === previous }, labelText(label))));
  }

  function readFilters() {
    const filters = {
      head: $('#f-head').value,
      label: $('#f-label').value,
      area: $('#f-area').value.trim(),
      from: $('#f-from').value,
      to: $('#f-to').value,
    };
    if (filters.from && filters.to && filters.from > filters.to) {
      showAlert('La fecha «desde» es posterior a la fecha «hasta».');
      return null;
    }
    return filters;
  }

  // ---- Loading --------------------------------------------------------------------------------------------

  async function loadQueue() {
    const queue = await guarded(() => api(queuePath()));
    if (!queue) return false;
    state.items = queue.items || [];
    state.total = queue.total ?? state.items.length;
    state.reviewed.clear();
    state.activeHead.clear();
    state.current = 0;
    renderQueue();
    announce(`${integer.format(state.total)} comentarios por revisar.`);
    return true;
  }

  async function refresh() {
    clearAlert();
    const loaded = await loadQueue();
    if (loaded) await loadStats();
  }

  /** Loads the model, the dashboard and the queue with the stored key; the key form if there is none. */
  async function start() {
    clearAlert();
    if (!state.key) {
      showLogin();
      return;
    }
    const model = await guarded(() => api('/v1/model'));
    if (!model) return;
    // The stats call needs the key: a wrong key is caught here, before the queue is drawn.
    const stats = await guarded(() => api('/v1/review/stats'));
    if (!stats) return;
    state.model = model;
    $('#model-line').textContent = `Modelo ${model.id} · ${model.heads.length} dimensiones`;
    fillFilterOptions();
    renderStats(stats);
    showWorkspace();
    await loadQueue();
  }

  function showLogin(message) {
    $('#login').hidden = false;
    $('#workspace').hidden = true;
    $('#session').hidden = true;
    $('#reviewer').value = state.reviewer;
    if (message) showAlert(message);
    $(state.reviewer ? '#api-key' : '#reviewer').focus();
  }

  function showWorkspace() {
    $('#login').hidden = true;
    $('#workspace').hidden = false;
    $('#session').hidden = false;
    $('#reviewer-name').textContent = state.reviewer;
  }

  function logout(message) {
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    showLogin(message);
  }

  // ---- Events ---------------------------------------------------------------------------------------------

  function isTyping(target) {
    return target instanceof HTMLElement
      && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) {
      if (event.key === 'Escape') {
        event.target.blur();
        select(state.current);
      }
      return;
    }
    if ($('#workspace').hidden) return;
    const item = state.items[state.current];
    const heads = item ? itemHeads(item) : [];
    const head = heads[Math.min(item ? headIndex(state.current) : 0, Math.max(0, heads.length - 1))];
    const handled = (() => {
      switch (event.key) {
        case 'j': select(state.current + 1); return true;
        case 'k': select(state.current - 1); return true;
        case 'l': moveHead(1); return true;
        case 'h': moveHead(-1); return true;
        case 'r': refresh(); return true;
        case 'c':
          if (item) review(state.current, head, item.heads[head].label);
          return true;
        case 'o': {
          const other = item && $(`#item-${state.current}-${CSS.escape(head)} .other-label`);
          if (other) other.focus();
          return true;
        }
        case 'n': {
          const note = $(`#item-${state.current}-note`);
          if (note) note.focus();
          return true;
        }
        default:
          break;
      }
      if (/^[1-9]$/.test(event.key) && item) {
        const choice = candidates(head, item.heads[head])[Number(event.key) - 1];
        if (choice) review(state.current, head, choice.label);
        return true;
      }
      return false;
    })();
    if (handled) event.preventDefault();
  }

  function wire() {
    $('#login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $('#api-key').value.trim();
      const reviewer = $('#reviewer').value.trim();
      if (!reviewer) {
        showAlert('Escriba su nombre o usuario: cada revisión queda registrada con él.');
        $('#reviewer').focus();
        return;
      }
      if (!key) {
        showAlert('Escriba la clave de la API.');
        $('#api-key').focus();
        return;
      }
      state.key = key;
      state.reviewer = reviewer;
      sessionStorage.setItem(KEY_STORAGE, key);
      sessionStorage.setItem(REVIEWER_STORAGE, reviewer);
      $('#api-key').value = '';
      start();
    });
    $('#logout').addEventListener('click', () => logout());
    $('#f-head').addEventListener('change', fillLabelOptions);
    $('#filter-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const filters = readFilters();
      if (!filters) return;
      state.filters = filters;
      state.offset = 0;
      refresh();
    });
    $('#clear-filters').addEventListener('click', () => {
      $('#filter-form').reset();
      fillLabelOptions();
      state.filters = {};
      state.offset = 0;
      refresh();
    });
    $('#prev-page').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      loadQueue();
    });
    $('#next-page').addEventListener('click', () => {
      state.offset += PAGE_SIZE;
      loadQueue();
    });
    $('#queue').addEventListener('click', (event) => {
      // A click anywhere in a comment makes it the current one (and the head clicked, the active head).
      const node = event.target.closest('.item');
      if (!node || !node.id.startsWith('item-')) return;
      const index = Number(node.id.slice('item-'.length));
      const fieldset = event.target.closest('fieldset.head');
      if (fieldset) {
        const heads = itemHeads(state.items[index]);
        state.activeHead.set(state.items[index].id, Math.max(0, heads.indexOf(fieldset.dataset.head)));
      }
      if (index !== state.current || fieldset) select(index, { focus: false });
    });
    document.addEventListener('keydown', onKey);
  }

  wire();
  start();
})();
