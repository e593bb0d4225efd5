// Some hosts report a language Intl cannot use: WebKitGTK (the desktop app's web view) under
// LANG=C says "C". uPlot and Monaco format with navigator.language as they load and would throw,
// leaving an empty page, so this module is imported first and falls back to en-US.
try {
  new Intl.NumberFormat(navigator.language);
} catch {
  Object.defineProperty(navigator, 'language', { value: 'en-US', configurable: true });
  Object.defineProperty(navigator, 'languages', { value: ['en-US'], configurable: true });
}
