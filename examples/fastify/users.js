'use strict';
// The demo user store: in memory, seeded with 1 Alice, 2 Bob, 3 Carol, kept by the one process.

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
