// refresh-token@1.0.0
// Declarations of modrun's JS globals and of this package's modules, for
// editors and tsc (runner types writes them: do not edit, run it again).

interface ModrunResponseMeta {
  statusCode: number;
  headers: Record<string, string[]>;
  isExecutionSuccess: boolean;
  durationMs: number;
}

/** A query module: one HTTP request template. */
interface ModrunQuery {
  /** Sends the request; resolves to the response data (JSON parsed, text as a string). */
  run(params?: Record<string, any>): Promise<any>;
  /** Appsmith's callback form. */
  run(onSuccess: (data: any, responseMeta: ModrunResponseMeta) => void, onError?: (error: any) => void, params?: Record<string, any>): Promise<any>;
  /** Sends the request; resolves to this call's data and responseMeta. */
  request(params?: Record<string, any>): Promise<{ data: any; responseMeta: ModrunResponseMeta }>;
  /** The last response's data, shared by concurrent calls. */
  readonly data: any;
  readonly responseMeta: ModrunResponseMeta | undefined;
  /** Forgets the last response (data and responseMeta). */
  clear(): Promise<void>;
}

/** An oauth2: credential of package.yaml. */
interface ModrunCredential {
  /** A fresh access token (refreshed first if it expires within the margin). */
  accessToken(): Promise<string>;
  /** A forced refresh, shared with concurrent callers. */
  refresh(): Promise<string>;
  /** Removes the token set. */
  logout(): Promise<void>;
}

interface ModrunConsole {
  log(...data: any[]): void;
  info(...data: any[]): void;
  debug(...data: any[]): void;
  warn(...data: any[]): void;
  error(...data: any[]): void;
  trace(...data: any[]): void;
}

declare const appsmith: {
  /** The app's store: session values first, then persisted ones. */
  readonly store: Readonly<Record<string, any>>;
};
declare const console: ModrunConsole;
/** Stores value under key: durable (fsync'd) when the promise resolves, unless persist is false. */
declare function storeValue(key: string, value: any, persist?: boolean): Promise<void>;
declare function removeValue(key: string): Promise<void>;
declare function clearStore(): Promise<void>;
/** Sets key to next only if its persisted value is old (undefined: absent). */
declare function compareAndSwapValue(key: string, old: any, next: any): Promise<boolean>;
/** Calls fn unless a call with the same key is in flight; joins it then. */
declare function singleFlight<T>(key: string, fn: () => T | Promise<T>): Promise<T>;
declare function showAlert(message: any, type?: string): void;
declare function setTimeout(fn: (...args: any[]) => void, ms?: number, ...args: any[]): number;
declare function setInterval(fn: (...args: any[]) => void, ms?: number, ...args: any[]): number;
declare function clearTimeout(id?: number): void;
/** Appsmith's form: setInterval(fn, ms, "id") names the interval; clearInterval("id") clears it. */
declare function setInterval(fn: () => void, ms: number, id: string): number;
declare function clearInterval(id?: number | string): void;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function navigateTo(...args: any[]): Promise<void>;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function showModal(...args: any[]): Promise<void>;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function closeModal(...args: any[]): Promise<void>;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function resetWidget(...args: any[]): Promise<void>;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function download(...args: any[]): Promise<void>;
/** Appsmith's page action: headless, it logs and does nothing. */
declare function copyToClipboard(...args: any[]): Promise<void>;

/** The package's inputs. */
declare const inputs: {
  /** the auth service */
  readonly baseUrl: string;
  /** refresh this many seconds before the access token expires */
  readonly marginSeconds: number;
  /** its password; never logged */
  readonly password: string;
  /** the account to log in as */
  readonly username: string;
};

/** The package's oauth2: credentials. */
declare const oauth2: {
};

/** The JS module auth.js. */
declare const auth: {
  ensureFresh(...args: any[]): any;
  getProfile(...args: any[]): any;
  isFresh(...args: any[]): any;
  keepFresh(...args: any[]): any;
  login(...args: any[]): any;
  refreshAccessToken(...args: any[]): any;
  saveTokens(...args: any[]): any;
  useAccessToken(...args: any[]): any;
  [member: string]: any;
};

/** The query module profile.query.yaml. */
declare const profile: ModrunQuery;

/** The query module refreshAPI.query.yaml. */
declare const refreshAPI: ModrunQuery;

/** The query module tokenAuth.query.yaml. */
declare const tokenAuth: ModrunQuery;
