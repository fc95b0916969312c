// esbuild's text loader: importing a .txt file yields its contents.
declare module "*.txt" {
  const text: string;
  export default text;
}
