// What every example backend shares: an Express app behind gripd (or Pushpin) with serve-grip's
// middleware, every request's Grip-Sig checked, the example's page at `/`, and the library's
// Publisher for the control API.
//
// Environment: PORT (backend port), GRIP_CONTROL_URI (the proxy's control API, default
// http://127.0.0.1:5561/), GRIP_SIG_KEY (the proxy's `[proxy] sig_key`, default `changeme`).
import path from 'node:path';
import express from 'express';
import { ServeGrip } from '@fanoutio/serve-grip';

export function createBackend(exampleDir) {
    const serveGrip = new ServeGrip({
        grip: {
            control_uri: process.env.GRIP_CONTROL_URI ?? 'http://127.0.0.1:5561/',
            verify_key: process.env.GRIP_SIG_KEY ?? 'changeme',
            verify_iss: 'pushpin', // `[proxy] sig_iss`
        },
        gripProxyRequired: true,
    });
    const publisher = serveGrip.getPublisher();
    const app = express();
    app.use(serveGrip);
    // serve-grip 2.0.0 sets req.grip.isSigned without awaiting the (async) signature check, so any
    // Grip-Sig header passes it; check the signature with the library's Publisher instead.
    app.use(async (req, res, next) => {
        const { isSigned } = await publisher.validateGripSig(req.headers['grip-sig']);
        if (!isSigned) {
            res.status(403).type('text/plain').send('Grip-Sig missing or not signed with GRIP_SIG_KEY\n');
            return;
        }
        next();
    });
    app.get('/', (req, res) => res.sendFile(path.join(exampleDir, 'index.html')));
    return { app, publisher };
}

export function listen(app, name) {
    const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
        const { port } = server.address();
        console.log(`${name} backend on 127.0.0.1:${port}; open http://127.0.0.1:7999/ (through gripd)`);
    });
}

// Runs async jobs one at a time, in order: publishes leave in the order the state changed.
export function serial() {
    let last = Promise.resolve();
    return (job) => {
        const run = last.then(job);
        last = run.catch((e) => console.error('publish failed:', e));
        return run;
    };
}
