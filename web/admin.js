// The admin pages (/admin): users (search, role, deactivate), the department tree, the organisation's
// permission table and the directory's sync status. The page is the same for everyone; it shows its tabs to
// admins and owners, and the server refuses the data APIs to anyone else anyway. An API this server does not
// have (404) shows as "not available" in its tab.
import { el } from "/static/dom.js";
import { errorText, formatDateTime, has, initPage, onLanguageChange, t } from "/static/i18n.js";
import { call, currentPerson, isAdmin } from "/static/session.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["owner", "admin", "member", "bot", "guest"];
const RANK = { guest: 0, bot: 1, member: 1, admin: 2, owner: 3 };

/** The error line for a failed call: "not available" when this server has no such API. */
function failure(err) {
  return err?.status === 404 && (!err.code || err.code === "not_found") ? t("admin.unavailable") : errorText(err);
}

const roleText = (role) => (has(`admin.role_${role}`) ? t(`admin.role_${role}`) : role);

// ---- users

const users = { all: [], me: null };

function userRow(user) {
  const row = el("tr");
  row.dataset.login = user.login;
  const inactive = user.active === false || user.directory_active === false;
  row.classList.toggle("admin__inactive", inactive);
  const role = el("select", { className: "admin__role" });
  role.setAttribute("aria-label", t("admin.roleOf", { login: user.login }));
  // Nobody acts on someone ranked above them, nor makes an owner unless they are one (the server checks too).
  const mine = RANK[users.me.role] ?? 0;
  for (const r of ROLES) {
    role.append(el("option", { value: r, textContent: roleText(r), disabled: r === "owner" && users.me.role !== "owner" }));
  }
  role.value = user.role;
  role.disabled = (RANK[user.role] ?? 0) > mine || user.login === users.me.login;
  role.onchange = async () => {
    $("users-error").textContent = "";
    try {
      Object.assign(user, await call(users.me, "PATCH", `/v1/users/${encodeURIComponent(user.login)}`, { role: role.value }));
    } catch (err) {
      role.value = user.role;
      $("users-error").textContent = errorText(err);
    }
  };
  const deactivate = el("button", { className: "btn btn--danger btn--small admin__deactivate", type: "button",
    textContent: inactive ? t("admin.deactivated") : t("admin.deactivate") });
  deactivate.disabled = inactive || role.disabled;
  deactivate.onclick = async () => {
    if (!confirm(t("admin.confirmDeactivate", { login: user.login }))) return;
    $("users-error").textContent = "";
    try {
      await call(users.me, "POST", `/v1/users/${encodeURIComponent(user.login)}/deactivate`, {});
      user.active = false;
      row.replaceWith(userRow(user));
    } catch (err) {
      $("users-error").textContent = errorText(err);
    }
  };
  row.append(el("td", { textContent: user.login }), el("td", { textContent: user.name || "" }),
    el("td", { textContent: user.department || "" }), el("td", {}, role), el("td", {}, deactivate));
  return row;
}

function renderUsers() {
  const query = $("user-search").value.trim().toLowerCase();
  const hit = (u) => !query || [u.login, u.name, u.department, u.email].some((v) => (v || "").toLowerCase().includes(query));
  $("user-rows").replaceChildren(...users.all.filter(hit).map(userRow));
}

async function loadUsers() {
  try {
    users.all = (await call(users.me, "GET", "/v1/users")).users.sort((a, b) => a.login.localeCompare(b.login));
    renderUsers();
  } catch (err) {
    $("users-error").textContent = failure(err);
  }
}

// ---- departments

function departmentNode(node) {
  const total = (n) => n.users.length + n.children.reduce((sum, c) => sum + total(c), 0);
  const li = el("li", {}, node.name, el("span", { className: "admin__count",
    textContent: t("admin.people", { count: total(node) }) }));
  li.dataset.path = node.path;
  if (node.children.length) li.append(el("ul", {}, ...node.children.map(departmentNode)));
  return li;
}

async function loadDepartments() {
  try {
    const root = await call(users.me, "GET", "/v1/departments");
    $("department-tree").replaceChildren(...root.children.map(departmentNode));
    $("departments-empty").hidden = root.children.length > 0;
  } catch (err) {
    $("departments-error").textContent = failure(err);
  }
}

// ---- permissions

const permissions = { table: null };
const permissionText = (name) => (has(`perm.${name}`) ? t(`perm.${name}`) : name);

function renderPermissions() {
  const table = permissions.table;
  const roles = table.roles || ROLES;
  $("permission-head").replaceChildren(el("th", { textContent: t("admin.permission") }),
    ...roles.map((r) => el("th", { textContent: roleText(r) })));
  $("permission-rows").replaceChildren(...table.permissions.filter((p) => p.editable).map((p) => {
    const row = el("tr", {}, el("td", { textContent: permissionText(p.name), title: p.name }));
    row.dataset.permission = p.name;
    for (const r of roles) {
      const box = el("input", { type: "checkbox", checked: p.roles.includes(r) });
      box.dataset.role = r;
      box.setAttribute("aria-label", `${permissionText(p.name)}: ${roleText(r)}`);
      row.append(el("td", {}, box));
    }
    return row;
  }));
}

async function loadPermissions() {
  $("permissions-save").disabled = true;
  try {
    permissions.table = await call(users.me, "GET", "/v1/admin/permissions");
    renderPermissions();
    $("permissions-save").disabled = false;
  } catch (err) {
    $("permissions-error").textContent = failure(err);
  }
}

/** Sends the rows that changed: {name: [roles]} (the server refuses what the caller may not change). */
async function savePermissions() {
  $("permissions-error").textContent = "";
  $("permissions-saved").textContent = "";
  const changes = {};
  for (const row of $("permission-rows").children) {
    const chosen = [...row.querySelectorAll("input:checked")].map((box) => box.dataset.role);
    const before = permissions.table.permissions.find((p) => p.name === row.dataset.permission).roles;
    if (chosen.length !== before.length || chosen.some((r) => !before.includes(r))) changes[row.dataset.permission] = chosen;
  }
  if (!Object.keys(changes).length) return;
  try {
    const answer = await call(users.me, "PUT", "/v1/admin/permissions", changes);
    if (Array.isArray(answer?.permissions)) permissions.table = answer;
    else permissions.table = await call(users.me, "GET", "/v1/admin/permissions");
    renderPermissions();
    $("permissions-saved").textContent = t("admin.saved");
  } catch (err) {
    $("permissions-error").textContent = failure(err);
  }
}

// ---- directory

function statusLines(status) {
  if (!status.configured) return [[t("admin.directoryConfigured"), t("admin.no")]];
  const run = status.last_run;
  const lines = [[t("admin.directoryConfigured"), t("admin.yes")], [t("admin.directoryUrl"), status.url || ""],
    [t("admin.directoryInterval"), t("admin.minutes", { count: Math.round((status.interval_seconds || 0) / 60) })],
    [t("admin.lastRun"), run ? formatDateTime(run.finished_at) : t("admin.never")]];
  if (run) {
    lines.push([t("admin.counts"), t("admin.countsText", { created: run.created, updated: run.updated,
      deactivated: run.deactivated, unchanged: run.unchanged })]);
    lines.push([t("admin.errors"), run.error_count ? run.errors.join("\n") : t("admin.none")]);
  }
  if (status.last_error) lines.push([t("admin.lastError"), status.last_error]);
  return lines;
}

async function loadDirectory() {
  $("directory-error").textContent = "";
  try {
    const status = await call(users.me, "GET", "/v1/admin/ldap/status");
    $("directory-status").replaceChildren(...statusLines(status).flatMap(([k, v]) =>
      [el("dt", { textContent: k }), el("dd", { textContent: String(v) })]));
    $("directory-sync").hidden = !status.configured;
  } catch (err) {
    $("directory-sync").hidden = true;
    $("directory-error").textContent = failure(err);
  }
}

async function syncDirectory() {
  $("directory-sync").disabled = true;
  try {
    await call(users.me, "POST", "/v1/admin/ldap/sync", {});
    await loadDirectory();
  } catch (err) {
    $("directory-error").textContent = failure(err);
  } finally {
    $("directory-sync").disabled = false;
  }
}

// ---- the page

const LOADERS = { users: loadUsers, departments: loadDepartments, permissions: loadPermissions, directory: loadDirectory };

function showTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const key of Object.keys(LOADERS)) $(`tab-${key}`).hidden = key !== name;
  history.replaceState(null, "", `#${name}`);
  return LOADERS[name]();
}

async function main() {
  initPage();
  const person = await currentPerson();
  if (!person) {
    $("admin-gate").replaceChildren(t("admin.signInFirst"), " ", el("a", { href: "/signin", textContent: t("signin.heading") }));
    return;
  }
  if (!isAdmin(person)) {
    $("admin-gate").textContent = t("admin.adminsOnly");
    return;
  }
  users.me = person;
  $("admin-body").hidden = false;
  for (const tab of document.querySelectorAll("[data-tab]")) tab.onclick = () => showTab(tab.dataset.tab);
  $("user-search").oninput = renderUsers;
  $("permissions-save").onclick = savePermissions;
  $("directory-sync").onclick = syncDirectory;
  onLanguageChange(() => {
    const current = document.querySelector('[data-tab][aria-selected="true"]')?.dataset.tab;
    if (current) LOADERS[current]();
  });
  const wanted = location.hash.slice(1);
  await showTab(wanted in LOADERS ? wanted : "users");
  document.body.dataset.ready = "admin";
}

main();
