// A real OpenID Connect provider for the OIDC tests: panva's oidc-provider (OpenID certified), started by
// tests/identity/oidc_provider.py on loopback. Its development login and consent pages accept any account
// id typed into the login form (that id becomes `sub`); the claims of known ids come from the config file.
//
// Usage: node provider.mjs CONFIG.json. The config holds issuer, port, clients (oidc-provider client
// metadata), accounts ({sub: {claim: value}}) and a private signing key as JWK (so two providers can share
// one key). Prints "listening" once it serves.
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [config.signing_key] },
  cookies: { keys: [config.cookie_key] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    org: ['department', 'title'],
  },
  scopes: ['openid', 'profile', 'email', 'org'],
  pkce: { methods: ['S256'], required: () => true },
  async findAccount(ctx, id) {
    const claims = config.accounts[id] || {};
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 300, Interaction: 300, Session: 600, Grant: 600 },
});
provider.proxy = false;

http.createServer(provider.callback()).listen(config.port, '127.0.0.1', () => {
  console.log('listening');
});
