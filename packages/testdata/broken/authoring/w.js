export default {
  async start() {},
};
