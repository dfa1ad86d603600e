// One script file the technician chose (`--ipxe-script`) at one URL, read anew for each
// request so an edit applies to the next client without a restart.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Publish } from '../core/index.js';

export interface ScriptFileRouteOptions {
  /** The URL path it answers, e.g. /boot.ipxe. */
  urlPath: string;
  /** The script on disk. */
  file: string;
  macForIp: (ip: string) => string | undefined;
  publish: Publish;
}

/** A `dynamic` hook for HttpFileServer: answers `urlPath` with the file, false for anything else. */
export function scriptFileRoute(options: ScriptFileRouteOptions): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  return async (req, res, url) => {
    if (url.pathname !== options.urlPath) return false;
    const body = await readFile(options.file);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
    const ip = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    // Generated: not a file of the served folder, and small; the history lists it with the scripts.
    options.publish('http.done', { mac: options.macForIp(ip), ip, file: options.urlPath, bytes: body.length, size: body.length, generated: true });
    return true;
  };
}
