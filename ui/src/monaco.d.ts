// Monaco's full editor (all features, languages loaded on demand) has the API's types.
declare module 'monaco-editor/editor/editor.main' {
  export * from 'monaco-editor';
}
