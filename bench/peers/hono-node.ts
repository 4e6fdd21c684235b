// Peer: @hono/node-server serving the very same fetch app narwhal serves (what a Node user
// would pick instead of narwhal).
import { serve } from '@hono/node-server';
import app from '../app.js';

serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: '127.0.0.1' }, () => process.stdout.write('ready\n'));
