'use strict';
// The demo user store: in memory, seeded with 1 Alice, 2 Bob, 3 Carol. server.js keeps one in
// its process; cluster.js keeps one in the primary, which its workers reach over IPC, so that
// every worker sees the same users.

class Users {
  constructor() {
    this.byId = new Map();
    this.nextId = 1;
    for (const name of ['Alice', 'Bob', 'Carol']) this.create(name);
  }

  get(id) {
    return this.byId.get(id);
  }

  create(name) {
    const user = { id: this.nextId++, name };
    this.byId.set(user.id, user);
    return user;
  }
}

module.exports = { Users };
