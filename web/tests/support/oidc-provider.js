// Test support: a real, certified OpenID Connect provider (the npm `oidc-provider` package) on a
// loopback port, for brokering tests. One static confidential client (our redirect URI), any
// login accepted at its development interaction pages (the account id is the login typed), and
// each account's claims made from that id.

import Provider from 'oidc-provider';
import { freePort } from './server.js';

/**
 * Starts the provider.
 * @param {{clientId: string, clientSecret: string, redirectUris: string[]}} client
 * @returns {Promise<{issuer: string, stop: () => Promise<void>}>}
 */
export async function startOidcProvider({ clientId, clientSecret, redirectUris }) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@provider.example`, email_verified: true, name: `${id} at the provider`, preferred_username: id };
        },
      };
    },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    cookies: { keys: ['a test key, not a secret'] },
  });
  // Its warnings about development settings are expected here.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider error', err));
  const server = await new Promise((resolve) => {
    const s = provider.listen(port, '127.0.0.1', () => resolve(s));
  });
  return {
    issuer,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
