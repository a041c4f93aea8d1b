'use strict';
// In-memory storage adapter for oidc-provider (the same semantics as its built-in quick-start
// adapter, without the start-up warning). All tokens, codes and sessions are lost on restart,
// which is what a test federation wants.

const store = new Map(); // key -> {payload, expiresAt}
const epoch = () => Math.floor(Date.now() / 1000);

function get(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.expiresAt && e.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e.payload;
}

let sweeps = 0;
function sweep() {
  if (++sweeps % 500) return; // now and then drop expired entries
  const now = Date.now();
  for (const [k, e] of store) if (e.expiresAt && e.expiresAt <= now) store.delete(k);
}

class MemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    sweep();
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : 0;
    store.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const list = get(gk) || [];
      list.push(this.key(id));
      store.set(gk, { payload: list, expiresAt: 0 });
    }
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
    if (payload.uid) store.set(`uid:${payload.uid}`, { payload: id, expiresAt });
  }

  async find(id) { return get(this.key(id)); }

  async findByUserCode(userCode) {
    const id = get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = get(`uid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const p = get(this.key(id));
    if (p) p.consumed = epoch();
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const k of get(gk) || []) store.delete(k);
    store.delete(gk);
  }
}

module.exports = MemoryAdapter;
