// A real OpenID Connect provider (panva/oidc-provider) for Mitmachen's sign-in tests. Test-only: it
// listens on 127.0.0.1 on a free port, keeps everything in memory and is started and stopped by a pytest
// fixture (tests/oidc_provider/fixture.py). Never deploy it.
//
// Configuration comes from the environment:
//   OIDC_TEST_CLIENTS  JSON list of {client_id, client_secret, redirect_uris}
// On start it prints one JSON line to stdout: {"issuer": "http://127.0.0.1:PORT"}.
//
// Sign-in uses a tiny interaction of our own (a login form whose "login" field becomes the account id, any
// password, then a consent form, and a Cancel link), plain HTML without outside resources, which the HTTP
// test client and Chromium both drive.
//
// Test control endpoints (under /_test/, JSON, 127.0.0.1 only):
//   PUT  /_test/accounts/:id   set the claims of an account (merged over the defaults)
//   POST /_test/misbehave      {"mode": ...} make the next token responses violate the protocol on purpose,
//                              so the client's ID-token checks are tested against real responses:
//                              "aud" (foreign audience), "iss" (foreign issuer), "nonce" (other nonce),
//                              "expired" (exp long past), "skewed" (exp 20 s past: within a
//                              client's clock-skew leeway), "signature" (signed by an unknown key),
//                              "userinfo_sub" (userinfo answers for another subject); "" turns it off
//   POST /_test/reset          forget accounts and misbehaviour
// Accounts whose id starts with "slow-code" get authorization codes that live one second (expiry tests).

import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.OIDC_TEST_CLIENTS || '[]').map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}));

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

const signingKey = rsaJwk(`test-${randomUUID().slice(0, 8)}`);
const rogueKey = rsaJwk(signingKey.kid); // same kid, different key: a forged signature
const accounts = new Map();
let misbehave = '';

function claimsOf(id) {
  return {
    sub: id,
    email: `${id}@example.org`,
    email_verified: true,
    name: `Test ${id}`,
    ...accounts.get(id),
  };
}

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

function decodeJwt(token) {
  const [header, payload] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString()),
  };
}

function signJwt(header, payload, jwk) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signer = createSign('RSA-SHA256');
  signer.update(input);
  return `${input}.${signer.sign({ key: jwk, format: 'jwk' }).toString('base64url')}`;
}

function tamper(idToken) {
  const { header, payload } = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = signingKey;
  switch (misbehave) {
    case 'aud': payload.aud = 'someone-else'; break;
    case 'iss': payload.iss = 'https://evil.example'; break;
    case 'nonce': payload.nonce = 'not-the-nonce-you-sent'; break;
    case 'expired': payload.iat = now - 3600; payload.exp = now - 1800; break;
    case 'skewed': payload.iat = now - 600; payload.exp = now - 20; break; // within the client's leeway
    case 'signature': key = rogueKey; break;
    default: return idToken;
  }
  return signJwt(header, payload, key);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      try { resolve(body ? JSON.parse(body) : {}); } catch (err) { reject(err); }
    });
  });
}

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><main><h1>${title}</h1>${body}</main></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(provider, req, res, action) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  const base = `/interaction/${uid}`;
  if (action === '/abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'GET') {
    const cancel = `<p><a href="${base}/abort">Cancel</a></p>`;
    const html = prompt.name === 'login'
      ? page('Test provider: sign in', `<form action="${base}/login" method="post">
<input type="hidden" name="prompt" value="login">
<p><label for="login">Login</label> <input id="login" required type="text" name="login"></p>
<p><label for="password">Password</label> <input id="password" required type="password" name="password"></p>
<p><button type="submit">Sign in</button></p></form>${cancel}`)
      : page('Test provider: allow access', `<p>${params.client_id} asks for: ${params.scope}</p>
<form action="${base}/consent" method="post">
<input type="hidden" name="prompt" value="consent">
<p><button type="submit">Continue</button></p></form>${cancel}`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
    return;
  }
  const form = await readForm(req);
  if (action === '/login' && prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: form.login } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }
  if (action === '/consent' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.writeHead(400, { 'content-type': 'text/plain' }).end('unexpected interaction step');
}

const server = createServer();

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomUUID(), randomUUID()] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'address'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'birthdate'],
      address: ['address'],
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AuthorizationCode: (ctx, code) => (String(code.accountId || '').startsWith('slow-code') ? 1 : 60),
      IdToken: 600,
      AccessToken: 600,
      Interaction: 600,
      Session: 600,
      Grant: 600,
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() { return claimsOf(id); },
      };
    },
  });

  // Misbehaviour is applied after the provider has answered, on the real response body.
  provider.use(async (ctx, next) => {
    await next();
    if (!misbehave) return;
    if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token) };
    }
    if (misbehave === 'userinfo_sub' && ctx.path === '/me' && ctx.status === 200 && ctx.body) {
      ctx.body = { ...ctx.body, sub: 'somebody-else' };
    }
  });

  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const step = req.url.match(/^\/interaction\/([\w-]+)(\/login|\/consent|\/abort)?$/);
    if (step) {
      try {
        await interaction(provider, req, res, step[2] || '');
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
      }
      return;
    }
    if (!req.url.startsWith('/_test/')) {
      callback(req, res);
      return;
    }
    try {
      const body = await readJson(req);
      const account = req.url.match(/^\/_test\/accounts\/([^/?]+)$/);
      if (req.method === 'PUT' && account) {
        accounts.set(decodeURIComponent(account[1]), body);
      } else if (req.method === 'POST' && req.url === '/_test/misbehave') {
        misbehave = String(body.mode || '');
      } else if (req.method === 'POST' && req.url === '/_test/reset') {
        accounts.clear();
        misbehave = '';
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
    }
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
