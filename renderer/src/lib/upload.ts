// Web mode: a dropped file is sent to the host (POST /upload, main/web/upload.ts), because a
// browser never learns where the file lives and the host could not read it there anyway.
// XMLHttpRequest rather than fetch: only it reports upload progress.
import { WEB_TOKEN_HEADER, WEB_UPLOAD_PATH } from '../../../preload/api.js';

/** The token web mode was opened with (kept by pickTransport for reloads). */
export function webToken(storage: Pick<Storage, 'getItem'> | undefined = globalThis.sessionStorage): string | undefined {
  return storage?.getItem('bootbench.token') ?? undefined;
}

export interface UploadProgress {
  file: string;
  /** Bytes of this file sent so far. */
  sent: number;
  size: number;
}

/** Sends one file; resolves with the host's upload id, rejects with the host's words. */
export function uploadFile(file: File, onProgress: (p: UploadProgress) => void, token = webToken()): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${WEB_UPLOAD_PATH}?name=${encodeURIComponent(file.name)}`);
    if (token) xhr.setRequestHeader(WEB_TOKEN_HEADER, token);
    xhr.upload.onprogress = (e) => onProgress({ file: file.name, sent: e.loaded, size: file.size });
    xhr.onload = () => {
      let body: { upload?: string; error?: string } = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: answered below by status */
      }
      if (xhr.status === 200 && body.upload) resolve(body.upload);
      else reject(new Error(body.error ?? `${file.name}: the host refused the upload (HTTP ${xhr.status}).`));
    };
    xhr.onerror = () =>
      reject(
        new Error(
          `${file.name}: the upload broke off (the host closed the connection: is it still running, and is there room on its disk?). Nothing was kept; drop the file again.`,
        ),
      );
    xhr.send(file);
  });
}
