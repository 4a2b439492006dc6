// Client-made ids: the anonymous device id (kept), and session and request ids (not).

export const DEVICE_ID_KEY = "likeview.deviceId";

type KeyValue = Pick<Storage, "getItem" | "setItem">;

export function randomId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function defaultStorage(): KeyValue | null {
  try {
    // Reading localStorage itself throws where storage is blocked (some private modes).
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

// Without storage the id still holds for the page's life, shared by every client.
let memoryDeviceId: string | undefined;

// Same bounds as the server's ids: 1 to 128 characters, no control characters.
const VALID = /^[^\u0000-\u001f\u007f]{1,128}$/;

/** The device id stored in `storage`, made and stored on first use. */
export function loadDeviceId(storage: KeyValue | null): string {
  let id: string | null = null;
  try {
    id = storage?.getItem(DEVICE_ID_KEY) ?? null;
  } catch {
    id = null;
  }
  if (id && VALID.test(id) && id.trim()) return id;
  id = memoryDeviceId ?? `web-${randomId()}`;
  memoryDeviceId = id;
  try {
    storage?.setItem(DEVICE_ID_KEY, id);
  } catch {
    // Quota or blocked storage: the in-memory id serves this page.
  }
  return id;
}
