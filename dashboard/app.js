// pgml-gateway dashboard: plain ES module, no build step. Talks to the /models API with the
// bearer token the user signs in with (kept in sessionStorage, sent on every request), so it
// shows exactly what that role may see. Text from the API only ever goes through textContent.
import { barChart, confusionChart, formatNumber, rocChart, scatterChart, timelineChart } from './charts.js';

const API = location.pathname.replace(/\/dashboard(\/.*)?$/, '');
const TOKEN_KEY = 'pgml.dashboard.token';
const KEY_METRICS = {
  classification: ['accuracy', 'f1', 'precision', 'recall', 'roc_auc'],
  regression: ['r2', 'mean_absolute_error', 'mean_squared_error'],
  clustering: ['silhouette'],
};
const FINAL_JOB = new Set(['succeeded', 'failed', 'cancelled']);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  projects: [],
  project: null, // describeProject response
  modelId: null,
  evaluation: null,
  jobs: new Map(), // id → job
};
let pollTimer = null;

// ---------- DOM helpers ----------

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const $ = (id) => document.getElementById(id);

function toast(message, kind = 'info') {
  const box = $('toast');
  box.replaceChildren(h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', text: message }));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.replaceChildren(), kind === 'error' ? 9000 : 4000);
}

// ---------- auth ----------

/** The JWT's payload, decoded for display only (the gateway verifies the signature). */
export function decodeJwt(token) {
  try {
    const part = token.split('.')[1];
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = 'GET', body, prefer, signingIn = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (prefer) headers.Prefer = prefer;
  const res = await fetch(`${API}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { message: text };
  }
  if (!res.ok) {
    if (res.status === 401 && state.token && !signingIn) signOut(`Signed out: ${json?.message ?? 'the token was refused'}`);
    throw new ApiFailure(res.status, json);
  }
  return json;
}

const describe = (e) => (e instanceof ApiFailure ? `${e.message}${e.body?.hint ? ` — ${e.body.hint}` : ''}` : String(e?.message ?? e));

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.project = null;
  state.modelId = null;
  state.jobs.clear();
  clearInterval(pollTimer);
  render();
  if (message) toast(message, 'error');
}

async function signIn(token) {
  state.token = token.trim();
  try {
    state.projects = await api('/models', { signingIn: true });
  } catch (e) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    render();
    $('signin-error').textContent = describe(e);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  loadJobs();
  render();
  route();
}

// ---------- routing (#/project/<name>/model/<id>) ----------

function go(project, modelId) {
  const hash = project ? `#/project/${encodeURIComponent(project)}${modelId ? `/model/${modelId}` : ''}` : '#/';
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (!state.token) return;
  const m = /^#\/project\/([^/]+)(?:\/model\/(\d+))?$/.exec(location.hash);
  const name = m ? decodeURIComponent(m[1]) : null;
  const modelId = m?.[2] ? Number(m[2]) : null;
  if (!name) {
    state.project = null;
    state.modelId = null;
    renderMain();
    return;
  }
  if (!state.project || state.project.name !== name) {
    try {
      state.project = await api(`/models/${encodeURIComponent(name)}`);
    } catch (e) {
      toast(describe(e), 'error');
      return;
    }
  }
  if (modelId !== state.modelId) {
    state.modelId = modelId;
    state.evaluation = null;
  }
  renderMain();
  if (modelId) loadEvaluation(name, modelId);
}

async function refresh() {
  try {
    state.projects = await api('/models');
    if (state.project) state.project = await api(`/models/${encodeURIComponent(state.project.name)}`);
  } catch (e) {
    toast(describe(e), 'error');
  }
  renderMain();
}

// ---------- deployments ----------

async function deploy(body, what) {
  const p = state.project;
  try {
    const r = await api(`/models/${encodeURIComponent(p.name)}/deploy`, { method: 'POST', body });
    toast(`${what}: model #${r.model_id} is deployed (${r.strategy})`);
  } catch (e) {
    toast(describe(e), 'error');
  }
  await refresh();
}

// ---------- jobs ----------

const jobsKey = () => `pgml.dashboard.jobs.${decodeJwt(state.token ?? '')?.role ?? 'anon'}`;

function loadJobs() {
  state.jobs.clear();
  for (const id of JSON.parse(sessionStorage.getItem(jobsKey()) ?? '[]')) state.jobs.set(id, { id, status: 'unknown', progress: 0 });
  pollJobs();
}

function saveJobs() {
  sessionStorage.setItem(jobsKey(), JSON.stringify([...state.jobs.keys()]));
}

function watchJob(id) {
  if (!state.jobs.has(id)) state.jobs.set(id, { id, status: 'queued', progress: 0 });
  saveJobs();
  pollJobs();
}

async function pollJobs() {
  clearTimeout(pollTimer);
  const open = [...state.jobs.values()].filter((j) => !FINAL_JOB.has(j.status));
  let finished = false;
  await Promise.all(
    open.map(async (j) => {
      try {
        const job = await api(`/models/jobs/${j.id}`);
        if (FINAL_JOB.has(job.status)) finished = true;
        state.jobs.set(j.id, job);
      } catch (e) {
        state.jobs.set(j.id, { ...j, status: 'failed', error: { message: describe(e) } });
      }
    }),
  );
  renderJobs();
  if (finished) refresh();
  if ([...state.jobs.values()].some((j) => !FINAL_JOB.has(j.status))) pollTimer = setTimeout(pollJobs, 400);
}

async function retrain(request) {
  try {
    const r = await api('/models/train', { method: 'POST', body: request, prefer: 'respond-async' });
    toast(`Training job #${r.job_id} queued`);
    watchJob(r.job_id);
  } catch (e) {
    toast(describe(e), 'error');
  }
}

async function cancelJob(id) {
  try {
    await api(`/models/jobs/${id}`, { method: 'DELETE' });
  } catch (e) {
    toast(describe(e), 'error');
  }
  pollJobs();
}

// ---------- evaluation ----------

async function loadEvaluation(project, modelId) {
  const box = $('plots');
  if (box) box.replaceChildren(h('p', { class: 'muted', text: 'Evaluating on the test split…' }));
  try {
    const ev = await api(`/models/${encodeURIComponent(project)}/models/${modelId}/evaluation`);
    if (state.modelId !== modelId) return;
    state.evaluation = ev;
  } catch (e) {
    if (state.modelId !== modelId) return;
    state.evaluation = { error: describe(e) };
  }
  renderPlots();
}

// ---------- rendering ----------

function render() {
  const signedIn = !!state.token;
  $('signin').hidden = signedIn;
  $('app').hidden = !signedIn;
  const who = $('whoami');
  who.replaceChildren();
  if (signedIn) {
    const claims = decodeJwt(state.token) ?? {};
    const exp = claims.exp ? ` · expires ${new Date(claims.exp * 1000).toLocaleString()}` : '';
    who.append(h('span', { class: 'role', 'data-testid': 'role', text: claims.role ?? '(anonymous role)' }), h('span', { class: 'muted', text: exp }), ' ', h('button', { type: 'button', class: 'link', onclick: () => signOut(), text: 'Sign out' }));
    renderMain();
  }
}

function renderMain() {
  renderProjects();
  renderProject();
  renderJobs();
}

function renderProjects() {
  const list = $('projects');
  if (state.projects.length === 0) {
    list.replaceChildren(h('p', { class: 'muted', text: 'No projects visible to this role. Train one with POST /models/train.' }));
    return;
  }
  list.replaceChildren(
    h('ul', { class: 'project-list' },
      state.projects.map((p) =>
        h('li', { class: state.project?.name === p.name ? 'active' : '' },
          h('a', { href: `#/project/${encodeURIComponent(p.name)}`, 'data-testid': `project-${p.name}` },
            h('strong', { text: p.name }),
            h('span', { class: `badge task-${p.task}`, text: p.task }),
            h('small', { class: 'muted', text: `${p.models} model${p.models === 1 ? '' : 's'} · ${p.deployed_model ? `#${p.deployed_model.model_id} ${p.deployed_model.algorithm} deployed` : 'nothing deployed'} · owner ${p.owner}` }),
          ),
        ),
      ),
    ),
  );
}

function metricCells(task, metrics) {
  return (KEY_METRICS[task] ?? []).map((k) => h('td', { class: 'num', text: formatNumber(metrics?.[k]) }));
}

function renderProject() {
  const box = $('project');
  const p = state.project;
  if (!p) {
    box.replaceChildren(h('p', { class: 'muted', text: 'Choose a project.' }));
    return;
  }
  const keys = KEY_METRICS[p.task] ?? [];
  const models = h('table', { class: 'models', 'data-testid': 'models' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Model' }), h('th', { text: 'Algorithm' }), h('th', { text: 'Status' }), keys.map((k) => h('th', { class: 'num', text: k })), h('th', { class: 'num', text: 'fit s' }), h('th', { text: 'Hyperparameters' }), h('th', { text: '' }))),
    h('tbody', {},
      p.models.map((m) =>
        h('tr', { class: [m.deployed ? 'deployed' : '', state.modelId === m.id ? 'selected' : ''].join(' '), 'data-model-id': m.id },
          h('td', {}, h('a', { href: `#/project/${encodeURIComponent(p.name)}/model/${m.id}`, 'data-testid': `open-model-${m.id}`, text: `#${m.id}` }), m.deployed ? h('span', { class: 'badge live', text: 'deployed' }) : null),
          h('td', { text: m.algorithm }),
          h('td', { text: m.status }),
          metricCells(p.task, m.metrics),
          h('td', { class: 'num', text: formatNumber(m.metrics?.fit_time) }),
          h('td', { class: 'hyper', text: JSON.stringify(m.hyperparams ?? {}) }),
          h('td', {}, !m.deployed && m.status === 'successful' ? h('button', { type: 'button', 'data-testid': `deploy-${m.id}`, onclick: () => deploy({ model_id: m.id }, `Deploy #${m.id}`), text: 'Deploy' }) : null),
        ),
      ),
    ),
  );
  const rows = [...p.deployments].reverse();
  const history = h('table', { class: 'deployments', 'data-testid': 'deployment-history' },
    h('thead', {}, h('tr', {}, h('th', { text: 'When' }), h('th', { text: 'Model' }), h('th', { text: 'Strategy' }))),
    h('tbody', {}, rows.map((d, i) => h('tr', { 'data-testid': 'deployment-row', class: i === 0 ? 'current' : '' }, h('td', { text: new Date(d.created_at).toLocaleString() }), h('td', { text: `#${d.model_id}` }), h('td', { text: d.strategy })))),
  );
  box.replaceChildren(
    h('div', { class: 'project-head' },
      h('h2', {}, p.name, ' ', h('span', { class: `badge task-${p.task}`, text: p.task })),
      h('p', { class: 'muted' }, `owner ${p.owner} · deployed: `, h('strong', { 'data-testid': 'deployed-model', text: p.deployed_model_id ? `#${p.deployed_model_id}` : 'none' })),
      h('div', { class: 'actions' },
        h('button', { type: 'button', 'data-testid': 'rollback', disabled: p.deployments.length < 2, onclick: () => confirm(`Roll ${p.name} back to the previously deployed model?`) && deploy({ strategy: 'rollback' }, 'Rollback'), text: '⟲ Roll back' }),
        h('button', { type: 'button', onclick: () => deploy({ strategy: 'best_score' }, 'Best score'), text: 'Deploy best score' }),
        h('button', { type: 'button', onclick: () => deploy({ strategy: 'most_recent' }, 'Most recent'), text: 'Deploy most recent' }),
      ),
    ),
    h('section', { class: 'card' }, h('h3', { text: 'Models' }), h('div', { class: 'scroll' }, models)),
    h('section', { class: 'card' }, h('h3', { text: 'Deployment history' }), timelineChart(p.deployments, p.models), h('div', { class: 'scroll short' }, history)),
    h('section', { class: 'card', id: 'model' }),
  );
  renderModel();
}

function renderModel() {
  const box = $('model');
  if (!box) return;
  const p = state.project;
  const m = p?.models.find((x) => x.id === state.modelId);
  if (!m) {
    box.replaceChildren(h('h3', { text: 'Model' }), h('p', { class: 'muted', text: state.modelId ? `Model #${state.modelId} is not in this project.` : 'Open a model to see its plots.' }));
    return;
  }
  // the task's key metrics first, then the others, timings last
  const keyOrder = KEY_METRICS[p.task] ?? [];
  const rank = (k) => (keyOrder.includes(k) ? keyOrder.indexOf(k) : k.endsWith('_time') ? 1000 : 100);
  const metrics = Object.entries(m.metrics ?? {})
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { class: 'num', text: formatNumber(v) })));
  box.replaceChildren(
    h('h3', { 'data-testid': 'model-title' }, `Model #${m.id} · ${m.algorithm}`, m.deployed ? h('span', { class: 'badge live', text: 'deployed' }) : null),
    h('div', { class: 'model-meta' },
      h('table', { class: 'kv' }, h('tbody', {}, metrics)),
      h('div', {},
        h('p', {}, h('strong', { text: 'Hyperparameters ' }), h('code', { text: JSON.stringify(m.hyperparams ?? {}) })),
        m.error ? h('p', { class: 'error', text: m.error }) : null,
        h('p', { id: 'eval-note', class: 'muted' }),
        h('div', { class: 'actions' },
          !m.deployed && m.status === 'successful' ? h('button', { type: 'button', onclick: () => deploy({ model_id: m.id }, `Deploy #${m.id}`), text: 'Deploy this model' }) : null,
          h('button', { type: 'button', id: 'retrain', 'data-testid': 'retrain', disabled: true, text: 'Retrain (async job)' }),
        ),
      ),
    ),
    h('div', { id: 'plots', class: 'plots' }),
  );
  renderPlots();
}

function figure(title, chart, note) {
  return h('figure', { class: 'plot' }, h('figcaption', { text: title }), chart, note ? h('p', { class: 'muted small', text: note }) : null);
}

function renderPlots() {
  const box = $('plots');
  if (!box) return;
  const ev = state.evaluation;
  if (!ev) {
    box.replaceChildren(h('p', { class: 'muted', text: 'Evaluating on the test split…' }));
    return;
  }
  if (ev.error) {
    box.replaceChildren(h('p', { class: 'error', 'data-testid': 'plots-error', text: `No plots: ${ev.error}` }));
    return;
  }
  const note = $('eval-note');
  if (note) note.textContent = `Evaluated ${ev.evaluated_rows} of ${ev.test_rows} test rows of ${ev.relation_name} (${ev.rows} rows; test_size ${ev.test_size}, ${ev.test_sampling})${ev.data_changed ? ' — the relation changed since training: the test split is approximate' : ''}.`;
  const retrainButton = $('retrain');
  if (retrainButton) {
    retrainButton.disabled = false;
    retrainButton.onclick = () => retrain(ev.train_request);
  }
  const figs = [];
  if (ev.task === 'classification') {
    const curves = Array.isArray(ev.roc) && ev.roc.length && 'points' in ev.roc[0] ? ev.roc : [{ label: `${ev.classes?.[1] ?? 'positive'} vs rest`, auc: ev.roc_auc, points: ev.roc ?? [] }];
    figs.push(figure('ROC curve', rocChart(curves), curves.length > 1 ? 'One-vs-rest per class.' : `Positive class: ${ev.classes?.[1]}.`));
    figs.push(figure('Confusion matrix', confusionChart(ev.confusion.labels, ev.confusion.matrix), 'Rows: actual class · columns: predicted class.'));
  } else if (ev.task === 'regression') {
    figs.push(figure('Predicted vs actual', scatterChart('pred-vs-actual', 'Predicted vs actual', ev.scatter.map((p) => ({ x: p.actual, y: p.predicted })), { xLabel: 'Actual', yLabel: 'Predicted', diagonal: true }), `${ev.scatter.length} test rows; the line is predicted = actual.`));
    figs.push(figure('Residuals', scatterChart('residuals', 'Residuals vs predicted', ev.residuals.map((p) => ({ x: p.predicted, y: p.residual })), { xLabel: 'Predicted', yLabel: 'Actual − predicted', zeroLine: true })));
  } else if (ev.clusters) {
    figs.push(figure('Cluster sizes', barChart('cluster-sizes', 'Test rows per cluster', ev.clusters.map((c) => ({ name: `cluster ${c.cluster}`, value: c.count })), { format: String })));
  }
  if (ev.feature_importance) {
    const top = ev.feature_importance.slice(0, 15).map((f) => ({ name: f.name, value: f.importance }));
    figs.push(figure('Feature importance', barChart('feature-importance', 'Feature importance (gain)', top), ev.feature_importance.length > 15 ? `Top 15 of ${ev.feature_importance.length} features.` : 'Gain, normalised to sum 1.'));
  }
  const metrics = Object.entries(ev.metrics ?? {}).filter(([k]) => !k.endsWith('_time'));
  box.replaceChildren(
    h('div', { class: 'plot-grid', 'data-testid': 'plots' }, figs),
    metrics.length ? h('p', { class: 'muted small' }, 'Recomputed on the evaluated rows: ', metrics.map(([k, v]) => `${k} ${formatNumber(v)}`).join(' · ')) : null,
  );
}

function renderJobs() {
  const box = $('jobs');
  if (!box) return;
  const jobs = [...state.jobs.values()].sort((a, b) => b.id - a.id);
  box.replaceChildren(
    jobs.length === 0
      ? h('p', { class: 'muted', text: 'No training jobs in this session. Retrain a model, or watch a job by id.' })
      : h('ul', { class: 'jobs' },
          jobs.map((j) => {
            const pct = Math.round((Number(j.progress) || 0) * 100);
            return h('li', { 'data-testid': `job-${j.id}`, 'data-status': j.status },
              h('div', { class: 'job-head' },
                h('strong', { text: `Job #${j.id}` }),
                h('span', { class: `badge job-${j.status}`, text: j.status }),
                j.params?.project_name ? h('small', { class: 'muted', text: `${j.params.project_name} · ${j.params.algorithm ?? ''}` }) : null,
                j.model_id ? h('a', { href: `#/project/${encodeURIComponent(j.params?.project_name ?? '')}/model/${j.model_id}`, text: `model #${j.model_id}` }) : null,
                !FINAL_JOB.has(j.status) && j.status !== 'unknown' ? h('button', { type: 'button', class: 'link', onclick: () => cancelJob(j.id), text: 'cancel' }) : null,
              ),
              h('div', { class: 'progress', role: 'progressbar', 'aria-valuenow': pct, 'aria-valuemin': 0, 'aria-valuemax': 100 }, progressBar(pct)),
              j.error ? h('small', { class: 'error', text: j.error.message ?? JSON.stringify(j.error) }) : null,
            );
          }),
        ),
  );
}

function progressBar(pct) {
  const bar = h('div', { class: 'progress-bar' }, h('span', { text: `${pct}%` }));
  bar.style.width = `${Math.max(pct, 0)}%`; // CSSOM, allowed by the page's CSP
  return bar;
}

// ---------- wiring ----------

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  $('signin-error').textContent = '';
  const token = $('token').value;
  if (!token.trim()) {
    $('signin-error').textContent = 'Paste a JWT signed with the gateway’s secret.';
    return;
  }
  signIn(token);
});
$('watch-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const id = Number($('watch-id').value);
  if (Number.isInteger(id) && id > 0) watchJob(id);
  $('watch-id').value = '';
});
$('refresh').addEventListener('click', () => refresh());
window.addEventListener('hashchange', route);

render();
if (state.token) signIn(state.token);
